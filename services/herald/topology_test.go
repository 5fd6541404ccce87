package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/bintest"
	"github.com/herald-ws/herald/shared/logging/logtest"
	"github.com/herald-ws/herald/shared/natstest"
)

// binaries builds the split binaries once for the tests of this package.
func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the split binaries")
	}
	return bintest.Build(t, "gateway", "trigger", "presence")
}

func TestMain(m *testing.M) { bintest.Main(m) }

const (
	splitAppID     = "split"
	splitAppKey    = "split-key"
	splitAppSecret = "split-secret-0123456789"
)

// proc is one running split binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	base string
	env  []string
	log  *logtest.Buffer

	stopOnce sync.Once
}

// startProc starts bin with the environment and its port setting, stops it
// with SIGTERM when the test ends and checks that it exited 0.
func startProc(t *testing.T, dir, bin, portVar string, env ...string) *proc {
	t.Helper()
	port := natstest.FreePort(t)
	p := &proc{name: fmt.Sprintf("%s:%d", bin, port), base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &logtest.Buffer{}}
	p.env = append(os.Environ(),
		"REVERB_APP_ID="+splitAppID, "REVERB_APP_KEY="+splitAppKey, "REVERB_APP_SECRET="+splitAppSecret,
		"REVERB_SERVER_HOST=127.0.0.1", "HERALD_TRIGGER_HOST=127.0.0.1", "HERALD_PRESENCE_HOST=127.0.0.1",
		portVar+"="+strconv.Itoa(port), "HERALD_LOG_LEVEL=info", "HERALD_SHUTDOWN_TIMEOUT=20s")
	p.env = append(p.env, env...)
	p.cmd = exec.Command(filepath.Join(dir, bin))
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and checks that the process exits 0.
func (p *proc) stop(t *testing.T) {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited: %v\n%s", p.name, err, p.log)
			}
		case <-time.After(40 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("%s did not stop 40 s after SIGTERM\n%s", p.name, p.log)
		}
	})
}

// health runs the binary's health command with the process's environment.
func (p *proc) health(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(p.cmd.Path, "health")
	cmd.Env = p.env
	err := cmd.Run()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// Gateways, triggers and presence services started at the same moment on a
// fresh 3-node JetStream cluster, streams and buckets at R3, all become
// ready (before shared/ensure, the trigger and a gateway exited after 30 s
// waiting for an unanswered stream create), and an event published through
// one trigger reaches a client of another gateway.
func TestSplitServicesStartTogetherOnACluster(t *testing.T) {
	dir := binaries(t)
	url := natstest.ClientURLs(natstest.StartCluster(t, 3))
	env := []string{"NATS_URL=" + url, "HERALD_STREAM_REPLICAS=3"}
	var procs []*proc
	start := time.Now()
	for range 3 {
		procs = append(procs, startProc(t, dir, "gateway", "REVERB_SERVER_PORT", env...))
	}
	for range 2 {
		procs = append(procs, startProc(t, dir, "trigger", "HERALD_TRIGGER_PORT", env...))
		procs = append(procs, startProc(t, dir, "presence", "HERALD_PRESENCE_PORT", env...))
	}
	for _, p := range procs {
		waitReadyOrLog(t, p)
	}
	t.Logf("all ready %s after the start", time.Since(start).Round(time.Millisecond))
	for _, p := range procs {
		if code := p.health(t); code != 0 {
			t.Errorf("%s health exited %d", p.name, code)
		}
	}

	gw, trig := procs[2], procs[3]
	ws := subscribe(t, strings.Replace(gw.base, "http", "ws", 1)+"/app/"+splitAppKey, "orders")
	if code, body, err := post(http.DefaultClient, trig.base, "orders", "shipped", `{"id":1}`); err != nil || code != http.StatusOK {
		t.Fatalf("publish: %d %s %v", code, body, err)
	}
	expectEvent(t, ws, "orders", "shipped", `{"id":1}`)
}

func waitReadyOrLog(t *testing.T, p *proc) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.Get(p.base + "/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never ready\n%s", p.name, p.log)
}

// A gateway started before NATS is alive but not ready, and its health
// command exits 1; once NATS starts it becomes ready and health exits 0.
func TestServiceStartedBeforeNATS(t *testing.T) {
	dir := binaries(t)
	natsPort := natstest.FreePort(t)
	gw := startProc(t, dir, "gateway", "REVERB_SERVER_PORT", fmt.Sprintf("NATS_URL=nats://127.0.0.1:%d", natsPort))
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(gw.base + "/up")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway /up never 200\n%s", gw.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := gw.health(t); code != 1 {
		t.Fatalf("health while NATS is down exited %d, want 1", code)
	}
	natstest.StartOn(t, natsPort)
	waitReadyOrLog(t, gw)
	if code := gw.health(t); code != 0 {
		t.Fatalf("health once ready exited %d, want 0\n%s", code, gw.log)
	}
	if !strings.Contains(gw.log.String(), "waiting for NATS") {
		t.Errorf("the gateway did not log what it waited for:\n%s", gw.log)
	}
	gw.stop(t) // while NATS runs
}

// The lines `herald keygen` prints start herald with that app, and
// `herald send` reaches a WebSocket subscriber of it.
func TestKeygenStartsHeraldAndSendReachesASubscriber(t *testing.T) {
	var out bytes.Buffer
	if code := keygen([]string{"-host", "ws.example.com", "-port", "443", "-scheme", "https"}, &out, io.Discard); code != 0 {
		t.Fatalf("keygen exited %d", code)
	}
	env := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	for _, k := range []string{"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET", "REVERB_HOST", "REVERB_PORT",
		"REVERB_SCHEME", "VITE_REVERB_APP_KEY", "VITE_REVERB_HOST", "VITE_REVERB_PORT", "VITE_REVERB_SCHEME"} {
		if env[k] == "" {
			t.Errorf("keygen printed no %s:\n%s", k, out.String())
		}
	}
	if env["REVERB_HOST"] != "ws.example.com" || env["REVERB_PORT"] != "443" || env["REVERB_SCHEME"] != "https" {
		t.Errorf("Laravel's lines: %v", env)
	}

	for _, k := range []string{"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET"} {
		t.Setenv(k, env[k])
	}
	t.Setenv("HERALD_APPS_FILE", "")
	t.Setenv("REVERB_SERVER_PATH", "reverb")
	t.Setenv("HERALD_URL", "")
	base := runHerald(t)

	ws := subscribe(t, strings.Replace(base, "http", "ws", 1)+"/reverb/app/"+env["REVERB_APP_KEY"], "orders")
	var sendOut, sendErr bytes.Buffer
	if code := send([]string{"orders", "order.shipped", `{"id":42}`}, &sendOut, &sendErr); code != 0 {
		t.Fatalf("send exited %d: %s %s", code, sendOut.String(), sendErr.String())
	}
	if !strings.HasPrefix(sendOut.String(), "200 ") {
		t.Errorf("send printed %q", sendOut.String())
	}
	expectEvent(t, ws, "orders", "order.shipped", `{"id":42}`)

	// A wrong secret: the API's 401, printed, and exit 1.
	t.Setenv("REVERB_APP_SECRET", "another-secret-0123456789")
	sendOut.Reset()
	if code := send([]string{"orders", "x", "{}"}, &sendOut, io.Discard); code != 1 || !strings.HasPrefix(sendOut.String(), "401 ") {
		t.Errorf("send with a wrong secret: exit %d, %q", code, sendOut.String())
	}
}

// keygen -apps-file writes a file every process reads (0600) and prints
// Laravel's lines; -if-missing keeps it and prints no secret again.
func TestKeygenAppsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "apps.json")
	var out bytes.Buffer
	if code := keygen([]string{"--apps-file", path, "--if-missing"}, &out, io.Discard); code != 0 {
		t.Fatalf("keygen exited %d", code)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("apps file: %v %v", st, err)
	}
	var file struct {
		Apps []storedApp `json:"apps"`
	}
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &file); err != nil || len(file.Apps) != 1 {
		t.Fatalf("apps file %s: %v", b, err)
	}
	if !strings.Contains(out.String(), "REVERB_APP_SECRET="+file.Apps[0].Secret) {
		t.Errorf("Laravel's lines missing:\n%s", out.String())
	}
	t.Setenv("REVERB_APP_ID", "")
	t.Setenv("REVERB_APP_KEY", "")
	t.Setenv("REVERB_APP_SECRET", "")
	t.Setenv("HERALD_APPS_FILE", path)
	if _, err := resolveApps(&config{DataDir: t.TempDir()}, io.Discard, discard); err != nil {
		t.Fatalf("the written apps file is refused: %v", err)
	}

	out.Reset()
	if code := keygen([]string{"--apps-file", path, "--if-missing"}, &out, io.Discard); code != 0 || strings.Contains(out.String(), "SECRET") {
		t.Fatalf("second keygen -if-missing: exit %d, printed %q", code, out.String())
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, b) {
		t.Fatal("-if-missing rewrote the file")
	}
	if code := keygen([]string{"--apps-file", path}, io.Discard, io.Discard); code != 1 {
		t.Fatalf("keygen over an existing file exited %d, want 1", code)
	}
}

// subscribe connects to url (ws://…/app/KEY) and subscribes to a public
// channel.
func subscribe(t *testing.T, url, channel string) *websocket.Conn {
	t.Helper()
	ws, _ := dial(t, url)
	subscribeWith(t, ws, map[string]any{"channel": channel})
	return ws
}

func expectEvent(t *testing.T, ws *websocket.Conn, channel, event, data string) {
	t.Helper()
	f := readFrame(t, ws)
	var got string
	if f.Event != event || f.Channel != channel || json.Unmarshal(f.Data, &got) != nil || got != data {
		t.Fatalf("frame %+v, want %s on %s with %s", f, event, channel, data)
	}
}

// keygen -if-missing generates nothing when the environment configures the
// app (REVERB_APP_* or another apps file): the services would serve that
// one. It says so in one line and exits 0.
func TestKeygenIfMissingKeepsTheAppOfTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apps.json")
	tests := []struct {
		name     string
		env      map[string]string
		generate bool
	}{
		{"nothing set", nil, true},
		{"REVERB_APP_*", map[string]string{"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s"}, false},
		{"REVERB_APP_ID alone", map[string]string{"REVERB_APP_ID": "1"}, false},
		{"another apps file", map[string]string{"HERALD_APPS_FILE": filepath.Join(dir, "mine.json")}, false},
		{"this apps file", map[string]string{"HERALD_APPS_FILE": dir + "/./apps.json"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, name := range []string{"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET", "HERALD_APPS_FILE"} {
				t.Setenv(name, tt.env[name])
			}
			_ = os.Remove(path)
			var out bytes.Buffer
			if code := keygen([]string{"--apps-file", path, "--if-missing"}, &out, io.Discard); code != 0 {
				t.Fatalf("exit %d", code)
			}
			_, err := os.Stat(path)
			if generated := err == nil; generated != tt.generate {
				t.Fatalf("apps file written: %v, want %v; printed %q", generated, tt.generate, out.String())
			}
			if !tt.generate && (strings.Count(out.String(), "\n") != 1 || strings.Contains(out.String(), "SECRET=")) {
				t.Errorf("printed %q, want one line and no secret", out.String())
			}
		})
	}
}
