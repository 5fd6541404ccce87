// Package bintest builds Herald's commands for tests that run them as
// processes: each once per test binary, into one temporary folder that Main
// removes when the tests end.
package bintest

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Module is the import path under which the commands live, as
// services/NAME.
const Module = "github.com/herald-ws/herald/services/"

var (
	mu    sync.Mutex
	dir   string
	built = map[string]bool{}
)

// Build builds the commands named (herald, gateway, trigger, presence) that
// this test binary has not built yet, and returns the folder that holds
// them. A failed build fails tb with the compiler's output.
func Build(tb testing.TB, names ...string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "herald-bin-")
		if err != nil {
			tb.Fatalf("bintest: %v", err)
		}
		dir = d
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	var missing []string
	for _, name := range names {
		if !built[name] {
			args = append(args, Module+name)
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return dir
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		tb.Fatalf("bintest: building %v: %v\n%s", missing, err, out)
	}
	for _, name := range missing {
		built[name] = true
	}
	return dir
}

// Main runs the tests of m, removes what Build built and exits with the
// tests' status: a package that calls Build calls it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	mu.Unlock()
	os.Exit(code)
}
