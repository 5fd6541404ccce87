package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitFile is the [Section] Key=value content of a systemd unit; a key set
// twice keeps every value.
type unitFile map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	return u
}

func (u unitFile) get(key string) string {
	v := u[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// The binary each unit runs, installed as /usr/local/bin/<name>.
var units = map[string]struct{ bin, installed string }{
	"herald.service":          {"herald", "herald"},
	"herald-gateway.service":  {"gateway", "herald-gateway"},
	"herald-trigger.service":  {"trigger", "herald-trigger"},
	"herald-presence.service": {"presence", "herald-presence"},
}

// TestSystemdUnits runs Debian's systemd-analyze on every unit in
// deploy/systemd, in a root folder laid out as the unit's install
// instructions say (the unit in /etc/systemd/system, the real binary in
// /usr/local/bin, systemd's own units beside them): `verify` must pass with
// nothing to say, and `security` must rate the sandbox at most 2.0.
func TestSystemdUnits(t *testing.T) {
	analyze := needTool(t, "systemd-analyze", "systemd")
	root := repoRoot()
	sets := repoSettings(t)
	bins := binaries(t)
	found, err := filepath.Glob(filepath.Join(root, "deploy", "systemd", "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != len(units) {
		t.Errorf("deploy/systemd has %d units, want %d", len(found), len(units))
	}
	for name, want := range units {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(root, "deploy", "systemd", name)
			u := readUnit(t, src)
			if got := u.get("Service.ExecStart"); got != "/usr/local/bin/"+want.installed {
				t.Errorf("ExecStart=%s, want /usr/local/bin/%s", got, want.installed)
			}
			if u.get("Service.LimitNOFILE") == "" {
				t.Error("no LimitNOFILE: each connection holds a file descriptor")
			}
			stop, err := time.ParseDuration(u.get("Service.TimeoutStopSec"))
			shutdown, _ := time.ParseDuration(sets[want.bin]["HERALD_SHUTDOWN_TIMEOUT"].Default)
			if shutdown == 0 {
				shutdown = 10 * time.Second
			}
			if err != nil || stop <= shutdown {
				t.Errorf("TimeoutStopSec=%s is not longer than HERALD_SHUTDOWN_TIMEOUT (%v)", u.get("Service.TimeoutStopSec"), shutdown)
			}
			for _, env := range u["Service.Environment"] {
				k, _, _ := strings.Cut(env, "=")
				if _, ok := sets[want.bin][k]; !ok {
					t.Errorf("Environment=%s: %s does not read %s", env, want.bin, k)
				}
			}
			if want.bin == "herald" && (u.get("Service.StateDirectory") != "herald" || !strings.Contains(strings.Join(u["Service.Environment"], " "), "HERALD_DATA_DIR=/var/lib/herald")) {
				t.Error("herald: want StateDirectory=herald and HERALD_DATA_DIR=/var/lib/herald")
			}

			fake := t.TempDir()
			for _, dir := range []string{"etc/systemd/system", "usr/local/bin", "usr/lib/systemd"} {
				if err := os.MkdirAll(filepath.Join(fake, dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if out, err := exec.Command("cp", "-r", "/usr/lib/systemd/system", filepath.Join(fake, "usr/lib/systemd/")).CombinedOutput(); err != nil {
				t.Fatalf("copying systemd's units: %v\n%s", err, out)
			}
			if out, err := exec.Command("cp", src, filepath.Join(fake, "etc/systemd/system", name)).CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if out, err := exec.Command("cp", filepath.Join(bins, want.bin), filepath.Join(fake, "usr/local/bin", want.installed)).CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out, err := exec.Command(analyze, "verify", "--root="+fake, name).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
			}
			out, err = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", "--root="+fake, name).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v)\n%s", name, err, lastLines(out, 3))
			}
		})
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
