package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The compose setups a user can start: the file alone, and with the 3-node
// NATS cluster on top.
var composeSetups = map[string][]string{
	"single":  {"docker-compose.yml"},
	"cluster": {"docker-compose.yml", "deploy/compose/cluster.yml"},
}

// heraldServices are the compose services built from deploy/Dockerfile that
// run a Herald service, and the binary each runs.
var heraldServices = map[string]string{
	"gateway":  "gateway",
	"trigger":  "trigger",
	"presence": "presence",
}

// loadCompose loads files as `docker compose` does, every profile enabled,
// from a copy of the repository's compose files in a fresh folder with
// dotenv as its .env ("" for none), so a developer's own .env plays no part.
func loadCompose(t *testing.T, files []string, dotenv string) *types.Project {
	t.Helper()
	dir := t.TempDir()
	for _, f := range append([]string{"deploy/compose/generated-app.env"}, files...) {
		src := repoFile(t, f)
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if dotenv != "" {
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(dotenv), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(dir, f))
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(dir),
		cli.WithEnv([]string{"PATH=/usr/bin"}),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("loading %v: %v", files, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("compose service %s: %v", name, err)
	}
	return s
}

func env(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

func TestComposeServicesMatchTheCode(t *testing.T) {
	root := repoRoot()
	sets := repoSettings(t)
	stages, err := readDockerfile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for setup, files := range composeSetups {
		t.Run(setup, func(t *testing.T) {
			p := loadCompose(t, files, "")
			for _, s := range p.Services {
				if s.ContainerName != "" {
					t.Errorf("%s: container_name %q stops --scale", s.Name, s.ContainerName)
				}
				if s.Build != nil {
					if s.Build.Dockerfile != "deploy/Dockerfile" || s.Build.Context != p.WorkingDir {
						t.Errorf("%s: builds %s in %s, want deploy/Dockerfile in the project folder", s.Name, s.Build.Dockerfile, s.Build.Context)
					}
					if stages[s.Build.Target] == nil {
						t.Errorf("%s: build target %q is not a stage of deploy/Dockerfile", s.Name, s.Build.Target)
					}
				}
				if s.Name != "init" && s.HealthCheck == nil {
					t.Errorf("%s: no healthcheck", s.Name)
				}
			}

			for name, bin := range heraldServices {
				s := service(t, p, name)
				if s.Build == nil || s.Build.Target != bin {
					t.Fatalf("%s: want build target %s", name, bin)
				}
				st := stages[bin]
				// Every variable set is one the binary reads.
				for k := range s.Environment {
					if _, ok := sets[bin][k]; !ok {
						t.Errorf("%s: sets %s, which %s does not read", name, k, bin)
					}
				}
				// Its port is the one the image exposes.
				port := servicePort(t, sets, bin, s)
				if !slices.Contains(st.Expose, port) {
					t.Errorf("%s: listens on %s, the %s image exposes %v", name, port, bin, st.Expose)
				}
				if len(s.Ports) > 0 {
					t.Errorf("%s: publishes ports %v; only nginx does, so that it can scale", name, s.Ports)
				}
				// Health from the binary itself; the same in the image.
				wantCheck := []string{"CMD", "/" + bin, "health"}
				if s.HealthCheck == nil || !slices.Equal(s.HealthCheck.Test, wantCheck) {
					t.Errorf("%s: healthcheck %v, want %v", name, s.HealthCheck, wantCheck)
				}
				if st.Entrypoint != `["/`+bin+`"]` || st.Healthcheck != `["/`+bin+`", "health"]` {
					t.Errorf("stage %s: entrypoint %s and healthcheck %s, want /%s and /%s health", bin, st.Entrypoint, st.Healthcheck, bin, bin)
				}
				// It stops within its grace period.
				shutdown, err := time.ParseDuration(sets[bin]["HERALD_SHUTDOWN_TIMEOUT"].Default)
				if err != nil {
					shutdown = 10 * time.Second // before every binary read it
				}
				if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= shutdown {
					t.Errorf("%s: stop_grace_period %v is not longer than HERALD_SHUTDOWN_TIMEOUT (%v)", name, s.StopGracePeriod, shutdown)
				}
				// It starts after the apps file is written and NATS is up.
				if d := s.DependsOn["init"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
					t.Errorf("%s: depends on init with %q, want %q", name, d.Condition, types.ServiceConditionCompletedSuccessfully)
				}
				for _, n := range natsServices(p) {
					if d := s.DependsOn[n]; d.Condition != types.ServiceConditionHealthy {
						t.Errorf("%s: depends on %s with %q, want %q", name, n, d.Condition, types.ServiceConditionHealthy)
					}
				}
				// NATS_URL names the NATS services of the project.
				natsURL, _ := env(s, "NATS_URL")
				var hosts []string
				for _, u := range strings.Split(natsURL, ",") {
					host := strings.TrimSuffix(strings.TrimPrefix(u, "nats://"), ":4222")
					hosts = append(hosts, host)
				}
				if !slices.Equal(hosts, natsServices(p)) {
					t.Errorf("%s: NATS_URL %q, want the project's NATS services %v on 4222", name, natsURL, natsServices(p))
				}
				if replicas, _ := env(s, "HERALD_STREAM_REPLICAS"); setup == "cluster" && replicas != "3" {
					t.Errorf("%s: HERALD_STREAM_REPLICAS=%q on the cluster, want 3", name, replicas)
				}
			}
			if p := service(t, p, "presence"); p.Deploy == nil || p.Deploy.Replicas == nil || *p.Deploy.Replicas != 2 {
				t.Errorf("presence: want two replicas (one active, one standing by)")
			}
		})
	}
}

// servicePort is the port a Herald service listens on in compose: its port
// setting, or the default in the code.
func servicePort(t *testing.T, sets settings, bin string, s types.ServiceConfig) string {
	t.Helper()
	name := map[string]string{
		"herald":   "REVERB_SERVER_PORT",
		"gateway":  "REVERB_SERVER_PORT",
		"trigger":  "HERALD_TRIGGER_PORT",
		"presence": "HERALD_PRESENCE_PORT",
	}[bin]
	if v, ok := env(s, name); ok {
		return v
	}
	if d := sets[bin][name].Default; d != "" {
		return d
	}
	t.Fatalf("%s: no %s and no default for it in the code", s.Name, name)
	return ""
}

// natsServices are the project's NATS servers in order: nats, nats-2, ….
func natsServices(p *types.Project) []string {
	var out []string
	for _, n := range p.ServiceNames() {
		if n == "nats" || strings.HasPrefix(n, "nats-") {
			out = append(out, n)
		}
	}
	// The first node is plain "nats".
	key := func(n string) string {
		if n == "nats" {
			return "nats-1"
		}
		return n
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(key(a), key(b)) })
	return out
}

func TestComposeNATSIsTheTestedVersion(t *testing.T) {
	mod := repoFile(t, "shared", "go.mod")
	m := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("shared/go.mod does not require nats-server")
	}
	want := "nats:" + string(m[1]) + "-alpine"
	for setup, files := range composeSetups {
		p := loadCompose(t, files, "")
		for _, n := range natsServices(p) {
			s := service(t, p, n)
			if s.Image != want {
				t.Errorf("%s: %s runs %s, the tests run nats-server v%s (%s)", setup, n, s.Image, m[1], want)
			}
			if s.HealthCheck == nil || !strings.Contains(strings.Join(s.HealthCheck.Test, " "), "http://127.0.0.1:8222/healthz") {
				t.Errorf("%s: %s healthcheck %v does not ask its /healthz", setup, n, s.HealthCheck)
			}
		}
	}
}

func TestComposeCluster(t *testing.T) {
	p := loadCompose(t, composeSetups["cluster"], "")
	nodes := natsServices(p)
	if !slices.Equal(nodes, []string{"nats", "nats-2", "nats-3"}) {
		t.Fatalf("cluster nodes %v, want nats, nats-2, nats-3", nodes)
	}
	names := map[string]bool{}
	for _, n := range nodes {
		s := service(t, p, n)
		if !slices.Equal(s.Command, []string{"nats-server", "--config", "/etc/nats/cluster.conf"}) {
			t.Errorf("%s: command %v, want the cluster configuration", n, s.Command)
		}
		name, _ := env(s, "NATS_SERVER_NAME")
		if name == "" || names[name] {
			t.Errorf("%s: NATS_SERVER_NAME %q empty or not unique", n, name)
		}
		names[name] = true
		routes, _ := env(s, "NATS_ROUTES")
		for _, other := range nodes {
			if !strings.Contains(routes, "nats://"+other+":6222") {
				t.Errorf("%s: NATS_ROUTES %q has no route to %s", n, routes, other)
			}
		}
		var mounted, data bool
		for _, v := range s.Volumes {
			mounted = mounted || (v.Target == "/etc/nats/cluster.conf" && strings.HasSuffix(v.Source, "deploy/nats/cluster.conf"))
			data = data || (v.Target == "/data" && v.Type == types.VolumeTypeVolume)
		}
		if !mounted || !data {
			t.Errorf("%s: want deploy/nats/cluster.conf mounted and a volume at /data, have %v", n, s.Volumes)
		}
	}
	// Every variable the configuration reads is set on every node.
	conf := repoFile(t, "deploy", "nats", "cluster.conf")
	for _, m := range regexp.MustCompile(`:\s*\$([A-Z_]+)`).FindAllSubmatch(conf, -1) {
		for _, n := range nodes {
			if _, ok := env(service(t, p, n), string(m[1])); !ok {
				t.Errorf("%s: cluster.conf reads $%s, which is not set", n, m[1])
			}
		}
	}
}

// The three ways to name the app: none (a generated one), REVERB_APP_* in
// .env, or a folder with an apps file.
func TestComposeApps(t *testing.T) {
	cases := []struct {
		name       string
		dotenv     string
		appsFile   string // HERALD_APPS_FILE in the services, "" for unset
		reverbID   string
		configFrom string // the source of /config: a volume name or a folder
	}{
		{"generated", "", "/config/apps.json", "", "herald-config"},
		{"reverb", "REVERB_APP_ID=shop\nREVERB_APP_KEY=shop-key\nREVERB_APP_SECRET=0123456789abcdef0123\n", "", "shop", "herald-config"},
		{"apps dir", "APPS_DIR=./my-apps\n", "/config/apps.json", "", "my-apps"},
	}
	for _, tc := range cases {
		for setup, files := range composeSetups {
			t.Run(tc.name+"/"+setup, func(t *testing.T) {
				p := loadCompose(t, files, tc.dotenv)
				initSvc := service(t, p, "init")
				if !slices.Equal(initSvc.Command, []string{"keygen", "--apps-file", "/config/apps.json", "--if-missing"}) {
					t.Errorf("init: command %v", initSvc.Command)
				}
				if initSvc.Build == nil || initSvc.Build.Target != "herald" {
					t.Errorf("init: must run the herald image, which has keygen")
				}
				if initSvc.Restart != "no" {
					t.Errorf("init: restart %q, want no (it runs once)", initSvc.Restart)
				}
				// keygen -if-missing generates nothing when .env names the app.
				if id, _ := env(initSvc, "REVERB_APP_ID"); id != tc.reverbID {
					t.Errorf("init: REVERB_APP_ID=%q, want %q (from .env)", id, tc.reverbID)
				}
				initSrc := configSource(t, initSvc, false)
				if !strings.HasSuffix(initSrc, tc.configFrom) {
					t.Errorf("init: /config from %q, want %q", initSrc, tc.configFrom)
				}
				for name := range heraldServices {
					s := service(t, p, name)
					got, ok := env(s, "HERALD_APPS_FILE")
					if got != tc.appsFile || ok != (tc.appsFile != "") {
						t.Errorf("%s: HERALD_APPS_FILE=%q (set: %v), want %q", name, got, ok, tc.appsFile)
					}
					if id, _ := env(s, "REVERB_APP_ID"); id != tc.reverbID {
						t.Errorf("%s: REVERB_APP_ID=%q, want %q", name, id, tc.reverbID)
					}
					if src := configSource(t, s, true); src != initSrc {
						t.Errorf("%s: /config from %q, init writes to %q", name, src, initSrc)
					}
				}
			})
		}
	}
}

// configSource is the source of a service's /config mount.
func configSource(t *testing.T, s types.ServiceConfig, readOnly bool) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == "/config" {
			if v.ReadOnly != readOnly {
				t.Errorf("%s: /config read-only %v, want %v", s.Name, v.ReadOnly, readOnly)
			}
			return v.Source
		}
	}
	t.Errorf("%s: no /config mount", s.Name)
	return ""
}

// Every setting put in .env reaches every service, and a port or listen
// address there does not move a service away from where nginx looks.
func TestComposeDotEnvReachesEveryService(t *testing.T) {
	sets := repoSettings(t)
	var dotenv strings.Builder
	for name := range sets.all() {
		if !strings.HasPrefix(name, "HERALD_") && !strings.HasPrefix(name, "REVERB_") {
			continue
		}
		dotenv.WriteString(name + "=from-dotenv\n")
	}
	pinned := map[string]bool{
		"REVERB_SERVER_HOST": true, "REVERB_SERVER_PORT": true,
		"HERALD_TRIGGER_HOST": true, "HERALD_TRIGGER_PORT": true,
		"HERALD_PRESENCE_HOST": true, "HERALD_PRESENCE_PORT": true,
		"HERALD_STREAM_REPLICAS": true, // 3 on the cluster
	}
	for setup, files := range composeSetups {
		p := loadCompose(t, files, dotenv.String())
		for name, bin := range heraldServices {
			s := service(t, p, name)
			for setting := range sets[bin] {
				if !strings.HasPrefix(setting, "HERALD_") && !strings.HasPrefix(setting, "REVERB_") {
					continue
				}
				got, _ := env(s, setting)
				switch {
				case pinned[setting] && got == "from-dotenv" && (setting != "HERALD_STREAM_REPLICAS" || setup == "cluster"):
					t.Errorf("%s/%s: %s from .env overrides what nginx and the cluster rely on", setup, name, setting)
				case !pinned[setting] && got != "from-dotenv":
					t.Errorf("%s/%s: %s from .env does not reach it (%q)", setup, name, setting, got)
				}
			}
		}
	}
}

// .env.example documents every variable the compose files read, and names
// nothing that is neither a setting nor one of those.
func TestEnvExample(t *testing.T) {
	sets := repoSettings(t)
	example := repoFile(t, ".env.example")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#?([A-Z][A-Z0-9_]*)=`).FindAllSubmatch(example, -1) {
		documented[string(m[1])] = true
	}
	interpolated := map[string]bool{}
	for _, files := range composeSetups {
		for _, f := range files {
			src := repoFile(t, f)
			for _, m := range regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`).FindAllSubmatch(src, -1) {
				interpolated[string(m[1])] = true
			}
		}
	}
	for v := range interpolated {
		if !documented[v] {
			t.Errorf(".env.example does not document %s, which docker-compose reads", v)
		}
	}
	all := sets.all()
	for v := range documented {
		if !all[v] && !interpolated[v] && v != "COMPOSE_FILE" {
			t.Errorf(".env.example names %s: not a setting of any binary, nor read by the compose files", v)
		}
	}
}

// nginx gets every variable its template uses, the template is the one file
// in deploy/nginx, and the addresses it is given are the services' ports.
func TestComposeNginx(t *testing.T) {
	sets := repoSettings(t)
	tmpl := repoFile(t, "deploy", "nginx", "split.conf.template")
	for setup, files := range composeSetups {
		p := loadCompose(t, files, "")
		s := service(t, p, "nginx")
		var mounted bool
		for _, v := range s.Volumes {
			mounted = mounted || (strings.HasSuffix(v.Source, "deploy/nginx/split.conf.template") &&
				v.Target == "/etc/nginx/templates/default.conf.template")
		}
		if !mounted {
			t.Errorf("%s: nginx does not mount deploy/nginx/split.conf.template as its template: %v", setup, s.Volumes)
		}
		filter, _ := env(s, "NGINX_ENVSUBST_FILTER")
		re, err := regexp.Compile(filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\$\{([A-Z_]+)\}`).FindAllSubmatch(tmpl, -1) {
			name := string(m[1])
			if _, ok := env(s, name); !ok || !re.MatchString(name) {
				t.Errorf("%s: the nginx template uses ${%s}: set it, and let NGINX_ENVSUBST_FILTER (%q) pass it", setup, name, filter)
			}
		}
		for variable, svc := range map[string]string{"NGINX_HERALD_GATEWAYS": "gateway", "NGINX_HERALD_TRIGGERS": "trigger"} {
			got, _ := env(s, variable)
			want := svc + ":" + servicePort(t, sets, svc, service(t, p, svc))
			if got != want {
				t.Errorf("%s: %s=%q, want %q", setup, variable, got, want)
			}
			if d := s.DependsOn[svc]; d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: nginx depends on %s with %q, want healthy", setup, svc, d.Condition)
			}
		}
		if r, _ := env(s, "NGINX_HERALD_RESOLVER"); r != "127.0.0.11" {
			t.Errorf("%s: NGINX_HERALD_RESOLVER=%q, want Docker's DNS 127.0.0.11", setup, r)
		}
		if len(s.Ports) != 1 || s.Ports[0].Target != 80 {
			t.Errorf("%s: nginx ports %v, want one, to its port 80", setup, s.Ports)
		}
	}
}

// The all-in-one image's data folder is owned by the user it runs as, so a
// fresh named volume there is writable.
func TestDockerfileDataDirWritable(t *testing.T) {
	stages, err := readDockerfile(filepath.Join(repoRoot(), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"herald", "gateway", "trigger", "presence"} {
		if st := stages[name]; st == nil || !strings.HasSuffix(st.Base, ":nonroot") {
			t.Errorf("stage %s: want a distroless nonroot base (uid 65532)", name)
		}
	}
	h := stages["herald"]
	var volume, owned, config bool
	for _, l := range h.Lines {
		volume = volume || l == "VOLUME /data"
		owned = owned || (strings.HasPrefix(l, "COPY --from=build --chown=65532:65532 ") && strings.HasSuffix(l, " /data"))
		config = config || (strings.HasPrefix(l, "COPY --from=build --chown=65532:65532 ") && strings.HasSuffix(l, " /config"))
	}
	if !volume || !owned || !config {
		t.Errorf("stage herald: want VOLUME /data, and /data and /config copied owned by 65532 (volume %v, /data %v, /config %v)", volume, owned, config)
	}
}
