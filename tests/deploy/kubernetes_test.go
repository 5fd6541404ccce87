package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// manifests holds every object of deploy/kubernetes/herald.yaml, decoded
// strictly (an unknown or misspelt field is an error) into the API types.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	pdbs        map[string]*policyv1.PodDisruptionBudget
	ingresses   map[string]*networkingv1.Ingress
}

func decodeManifests(src []byte) (*manifests, error) {
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		hpas:        map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		ingresses:   map[string]*networkingv1.Ingress{},
	}
	// The kinds the manifests may hold, by "apiVersion kind".
	kinds := map[string]func([]byte) error{
		"apps/v1 Deployment":                     into(m.deployments),
		"v1 Service":                             into(m.services),
		"v1 ConfigMap":                           into(m.configMaps),
		"autoscaling/v2 HorizontalPodAutoscaler": into(m.hpas),
		"policy/v1 PodDisruptionBudget":          into(m.pdbs),
		"networking.k8s.io/v1 Ingress":           into(m.ingresses),
	}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(src), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		decode, ok := kinds[tm.APIVersion+" "+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := decode([]byte(doc)); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
	}
	return m, nil
}

// into decodes a document strictly as a *T and files it under its name.
func into[T any, PT interface {
	*T
	GetName() string
}](byName map[string]PT) func([]byte) error {
	return func(doc []byte) error {
		o := PT(new(T))
		if err := yaml.UnmarshalStrict(doc, o); err != nil {
			return err
		}
		if o.GetName() == "" {
			return errors.New("no name")
		}
		byName[o.GetName()] = o
		return nil
	}
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	// The decoder refuses what the API server would not know.
	if _, err := decodeManifests([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n")); err == nil {
		t.Fatal("strict decoding let a misspelt field through")
	}
	src := repoFile(t, "deploy", "kubernetes", "herald.yaml")
	if _, err := decodeManifests(src); err != nil {
		t.Fatal(err)
	}
}

func TestKubernetesManifestsMatchTheCode(t *testing.T) {
	sets := repoSettings(t)
	src := repoFile(t, "deploy", "kubernetes", "herald.yaml")
	m, err := decodeManifests(src)
	if err != nil {
		t.Fatal(err)
	}
	settingsMap := m.configMaps["herald-settings"]
	if settingsMap == nil {
		t.Fatal("no ConfigMap herald-settings")
	}
	if settingsMap.Data["HERALD_STREAM_REPLICAS"] != "3" {
		t.Errorf("HERALD_STREAM_REPLICAS=%q, want 3 on the NATS cluster", settingsMap.Data["HERALD_STREAM_REPLICAS"])
	}

	for _, bin := range []string{"gateway", "trigger", "presence"} {
		d := m.deployments["herald-"+bin]
		if d == nil {
			t.Errorf("no Deployment herald-%s", bin)
			continue
		}
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("%s: want one container", d.Name)
		}
		c := spec.Containers[0]
		if !strings.Contains(c.Image, "/"+bin+":") {
			t.Errorf("%s: image %s is not the %s image", d.Name, c.Image, bin)
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector does not match its pods' labels", d.Name)
		}
		// Every variable set is one the binary reads.
		env := map[string]string{}
		for k, v := range settingsMap.Data {
			env[k] = v
		}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		for k := range env {
			if _, ok := sets[bin][k]; !ok {
				t.Errorf("%s: sets %s, which %s does not read", d.Name, k, bin)
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil || ef.ConfigMapRef.Name != settingsMap.Name {
				t.Errorf("%s: envFrom %+v, want the herald-settings ConfigMap", d.Name, ef)
			}
		}
		// The port is the one the binary listens on.
		port := servicePortFromEnv(t, sets, bin, env)
		if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port {
			t.Errorf("%s: container ports %v, the %s listens on %s", d.Name, c.Ports, bin, port)
		}
		// Ready and alive from the binary's own endpoints.
		probe := func(what string, p *corev1.Probe, path string) {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != c.Ports[0].Name {
				t.Errorf("%s: %s probe %+v, want GET %s on the %q port", d.Name, what, p, path, c.Ports[0].Name)
			}
		}
		probe("readiness", c.ReadinessProbe, "/ready")
		probe("liveness", c.LivenessProbe, "/up")
		// The apps file is mounted where HERALD_APPS_FILE points.
		if env["HERALD_APPS_FILE"] == "" || len(c.VolumeMounts) != 1 || !strings.HasPrefix(env["HERALD_APPS_FILE"], c.VolumeMounts[0].MountPath+"/") {
			t.Errorf("%s: HERALD_APPS_FILE %q is not in a mounted volume %v", d.Name, env["HERALD_APPS_FILE"], c.VolumeMounts)
		}
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: want runAsNonRoot and a read-only root filesystem", d.Name)
		}
		// It stops (after its preStop pause) before it is killed.
		shutdown, err := time.ParseDuration(sets[bin]["HERALD_SHUTDOWN_TIMEOUT"].Default)
		if err != nil {
			shutdown = 10 * time.Second
		}
		var pause time.Duration
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= pause+shutdown {
			t.Errorf("%s: terminationGracePeriodSeconds %v is not longer than the preStop pause (%v) and HERALD_SHUTDOWN_TIMEOUT (%v)", d.Name, spec.TerminationGracePeriodSeconds, pause, shutdown)
		}
		if bin == "gateway" && pause == 0 {
			t.Errorf("%s: want a preStop pause before the drain", d.Name)
		}
		// A Service (for the ingress) reaches it by its port name.
		if svc := m.services[d.Name]; bin != "presence" {
			if svc == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) ||
				len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != c.Ports[0].Name {
				t.Errorf("Service %s: missing, or not selecting %s's pods on its port", d.Name, d.Name)
			}
		}
		// A disruption budget keeps some of them up during node drains.
		pdb := m.pdbs[d.Name]
		if pdb == nil {
			t.Errorf("no PodDisruptionBudget for %s", d.Name)
		} else if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget %s does not select %s's pods", pdb.Name, d.Name)
		}
	}

	gw := m.deployments["herald-gateway"]
	hpa := m.hpas["herald-gateway"]
	if hpa == nil || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != gw.Name {
		t.Errorf("want a HorizontalPodAutoscaler of the gateway Deployment, have %+v", hpa)
	} else if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
		t.Errorf("HPA minReplicas %v: want at least 2 gateways, so one can drain", hpa.Spec.MinReplicas)
	}
	if gw.Spec.Replicas != nil {
		t.Errorf("herald-gateway sets replicas, which fights the HPA")
	}
	if p := m.deployments["herald-presence"]; p.Spec.Replicas == nil || *p.Spec.Replicas != 2 {
		t.Errorf("herald-presence: want 2 replicas (one active, one standing by)")
	}

	ing := m.ingresses["herald"]
	if ing == nil {
		t.Fatal("no Ingress herald")
	}
	routes := map[string]string{}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			routes[p.Path] = p.Backend.Service.Name
		}
	}
	if routes["/app/"] != "herald-gateway" || routes["/apps/"] != "herald-trigger" {
		t.Errorf("Ingress routes %v, want /app/ to herald-gateway and /apps/ to herald-trigger", routes)
	}
}

func servicePortFromEnv(t *testing.T, sets settings, bin string, env map[string]string) string {
	t.Helper()
	name := map[string]string{"gateway": "REVERB_SERVER_PORT", "trigger": "HERALD_TRIGGER_PORT", "presence": "HERALD_PRESENCE_PORT"}[bin]
	if v := env[name]; v != "" {
		return v
	}
	return sets[bin][name].Default
}

// natsValues is the part of the NATS chart's values that nats-values.yaml
// sets; decoding strictly into it catches a misspelt key in our file.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				PVC struct {
					Size string `json:"size"`
				} `json:"pvc"`
			} `json:"fileStore"`
		} `json:"jetstream"`
	} `json:"config"`
	Container struct {
		Image struct {
			Tag string `json:"tag"`
		} `json:"image"`
	} `json:"container"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]struct {
			MaxSkew           int    `json:"maxSkew"`
			WhenUnsatisfiable string `json:"whenUnsatisfiable"`
		} `json:"topologySpreadConstraints"`
	} `json:"podTemplate"`
}

func TestNATSHelmValues(t *testing.T) {
	src := repoFile(t, "deploy", "kubernetes", "nats-values.yaml")
	var v natsValues
	if err := yaml.UnmarshalStrict(src, &v); err != nil {
		t.Fatal(err)
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 || !v.Config.JetStream.Enabled {
		t.Errorf("want a 3-node cluster with JetStream, have %+v", v.Config)
	}
	mod := repoFile(t, "shared", "go.mod")
	if want := regexp.MustCompile(`nats-server/v2 v(\S+)`).FindSubmatch(mod); want == nil || v.Container.Image.Tag != string(want[1])+"-alpine" {
		t.Errorf("NATS image tag %q, want the version the tests run (shared/go.mod)", v.Container.Image.Tag)
	}
	herald := repoFile(t, "deploy", "kubernetes", "herald.yaml")
	// The release is named nats (in the install line of both files), so
	// the chart's client Service is nats:4222.
	for name, b := range map[string][]byte{"nats-values.yaml": src, "herald.yaml": herald} {
		if !bytes.Contains(b, []byte("helm install nats nats/nats -f deploy/kubernetes/nats-values.yaml")) {
			t.Errorf("%s: the install line does not name the release nats", name)
		}
	}
	if !bytes.Contains(herald, []byte("NATS_URL: nats://nats:4222")) {
		t.Errorf("herald.yaml: NATS_URL is not the chart's Service nats:4222")
	}
}
