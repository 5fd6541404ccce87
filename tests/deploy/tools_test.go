package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/herald-ws/herald/shared/bintest"
	"github.com/herald-ws/herald/shared/settingstest"
)

// needTool returns the path of a program the test runs. Missing, the test is
// skipped on a developer's machine and fails in CI (CI set), where .ci/run
// installs it.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (Debian package %s; .ci/run installs it)", name, debianPackage)
	}
	t.Skipf("%s is not installed (apt-get install %s)", name, debianPackage)
	return ""
}

// binaries builds herald, gateway, trigger and presence once per test run
// and returns the folder holding them.
func binaries(t *testing.T) string {
	t.Helper()
	return bintest.Build(t, "herald", "gateway", "trigger", "presence")
}

func TestMain(m *testing.M) { bintest.Main(m) }

// repoFile returns the file at path (its elements joined) below the
// repository's top folder.
func repoFile(t *testing.T, path ...string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(append([]string{repoRoot()}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// settings maps each binary (herald, gateway, trigger, presence) to the
// settings it reads, by name.
type settings map[string]map[string]settingstest.Setting

// all is every setting any binary reads.
func (s settings) all() map[string]bool {
	out := map[string]bool{}
	for _, m := range s {
		for name := range m {
			out[name] = true
		}
	}
	return out
}

// repoSettings returns the settings each binary of the repository reads,
// as its source declares them.
func repoSettings(t *testing.T) settings {
	t.Helper()
	tree := settingstest.NewTree(repoRoot())
	sets := settings{}
	for _, bin := range settingstest.Binaries {
		sets[bin] = tree.Reads(t, bin)
	}
	return sets
}
