package process_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/process/processtest"
	"github.com/nats-io/nats.go/jetstream"
)

type testConfig struct {
	Process process.Settings
	Port    int `env:"TEST_PORT"`
}

// testService serves /body (reads the whole body), /ws (a WebSocket echo)
// and /hello; its Shutdown waits for block, if set, or for ctx.
type testService struct {
	block chan struct{}
}

func (s *testService) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") })
	mux.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d", len(b))
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, m); err != nil {
				return
			}
		}
	})
	return mux
}

func (s *testService) Shutdown(ctx context.Context) error {
	if s.block == nil {
		return nil
	}
	select {
	case <-s.block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// program connects to NATS and ensures a stream before it is ready.
func program(svc *testService) process.Program[testConfig] {
	return process.Program[testConfig]{
		Name:     "test",
		Summary:  "a test service",
		Settings: func(c *testConfig) *process.Settings { return &c.Process },
		Addr:     func(c *testConfig) string { return process.JoinHostPort("127.0.0.1", c.Port) },
		Start: func(ctx context.Context, rt *process.Runtime, _ *testConfig) (process.Service, error) {
			nc, err := rt.Connect(ctx, "test")
			if err != nil {
				return nil, err
			}
			js, err := jetstream.New(nc)
			if err != nil {
				return nil, err
			}
			if _, err := ensure.Stream(ctx, js, jetstream.StreamConfig{Name: "TEST", Subjects: []string{"test.>"}}); err != nil {
				return nil, err
			}
			return svc, nil
		},
	}
}

// start runs p with env until the test ends and returns its base URL and
// the channel of Run's result.
func start(t *testing.T, p process.Program[testConfig], env map[string]string) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	port := natstest.FreePort(t)
	t.Setenv("TEST_PORT", strconv.Itoa(port))
	t.Setenv("HERALD_LOG_LEVEL", "warn")
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		done <- p.Run(ctx, io.Discard, io.Discard)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return 30 s after its context ended")
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port), cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// A service started before NATS is alive (/up) but not ready (/ready 503,
// and health exits 1); once NATS starts it connects, ensures its stream
// and is ready (health exits 0).
func TestWaitsForNATS(t *testing.T) {
	natsPort := natstest.FreePort(t)
	p := program(&testService{})
	base, _, done := start(t, p, map[string]string{"NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", natsPort)})

	poll.Until(t, 20*time.Second, "/up to answer 200", func() bool {
		code, _ := get(t, base+"/up")
		return code == http.StatusOK
	})
	if code, body := get(t, base+"/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/ready without NATS: %d %s", code, body)
	}
	if code, body := get(t, base+"/hello"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Fatalf("a request before ready: %d %s", code, body)
	}
	var stderr bytes.Buffer
	if code := p.Main([]string{"health"}, io.Discard, &stderr); code != 1 {
		t.Fatalf("health without NATS exited %d, want 1", code)
	}

	natstest.StartOn(t, natsPort)
	processtest.WaitReady(t, base)
	if code, body := get(t, base+"/hello"); code != http.StatusOK || body != "hello" {
		t.Fatalf("after ready: %d %s", code, body)
	}
	if code := p.Main([]string{"health"}, io.Discard, &stderr); code != 0 {
		t.Fatalf("health when ready exited %d: %s", code, stderr.String())
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	default:
	}
}

// While it stops, a process answers /ready 503 "draining"; a shutdown that
// overruns HERALD_SHUTDOWN_TIMEOUT is cut there and reported as an error.
func TestShutdownTimeoutHonoured(t *testing.T) {
	srv := natstest.Start(t)
	svc := &testService{block: make(chan struct{})}
	defer close(svc.block)
	base, cancel, done := start(t, program(svc), map[string]string{
		"NATS_URL": srv.ClientURL(), "HERALD_SHUTDOWN_TIMEOUT": "3s",
	})
	processtest.WaitReady(t, base)
	cancel()
	for {
		code, body := get(t, base+"/ready")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if code == 0 {
			t.Fatalf("/ready never answered draining before the listener closed: %s", body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run = %v, want the shutdown deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still running 30 s after the stop, with a 3s shutdown timeout")
	}
}

// The read timeout cuts a request whose body trickles in, the idle timeout
// closes a keep-alive connection, and a WebSocket lives on past both.
func TestHTTPTimeouts(t *testing.T) {
	srv := natstest.Start(t)
	base, _, _ := start(t, program(&testService{}), map[string]string{
		"NATS_URL": srv.ClientURL(), "HERALD_HTTP_READ_TIMEOUT": "1s", "HERALD_HTTP_IDLE_TIMEOUT": "1s",
	})
	processtest.WaitReady(t, base)
	addr := strings.TrimPrefix(base, "http://")

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	// A body of 1000 bytes sent at 20 bytes a second would take 50 s.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	cut := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, slow)
		cut <- err
	}()
	sent := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
trickle:
	for ; sent < 1000; sent++ {
		select {
		case <-cut:
			break trickle
		case <-tick.C:
			if _, err := slow.Write([]byte("x")); err != nil {
				break trickle
			}
		}
	}
	if sent >= 1000 {
		t.Fatal("the whole slow body was read: no read timeout")
	}

	// An idle keep-alive connection is closed by the server.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_ = idle.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle keep-alive connection: read %v, want EOF (closed by the server)", err)
	}

	// The WebSocket opened before all this has outlived both timeouts.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, m, err := ws.ReadMessage(); err != nil || string(m) != "still here" {
		t.Fatalf("WebSocket after the timeouts: %q %v", m, err)
	}
}

// /metrics leaves the public port for HERALD_METRICS_ADDR; pprof is served
// on HERALD_PPROF_ADDR only.
func TestMetricsAndPprofAddrs(t *testing.T) {
	srv := natstest.Start(t)
	mport, pport := natstest.FreePort(t), natstest.FreePort(t)
	base, _, _ := start(t, program(&testService{}), map[string]string{"NATS_URL": srv.ClientURL(),
		"HERALD_METRICS_ADDR": fmt.Sprintf("127.0.0.1:%d", mport), "HERALD_PPROF_ADDR": fmt.Sprintf("127.0.0.1:%d", pport)})
	processtest.WaitReady(t, base)
	for _, tt := range []struct {
		url  string
		want int
	}{
		{base + "/metrics", http.StatusNotFound}, // the service's handler has none
		{fmt.Sprintf("http://127.0.0.1:%d/metrics", mport), http.StatusOK},
		{fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", pport), http.StatusOK},
		{base + "/debug/pprof/", http.StatusNotFound},
	} {
		if code, _ := get(t, tt.url); code != tt.want {
			t.Errorf("%s: %d, want %d", tt.url, code, tt.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	p := program(&testService{})
	var out bytes.Buffer
	if code := p.Main([]string{"version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "test ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := p.Main([]string{"-h"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "health") || !strings.Contains(out.String(), "version") {
		t.Fatalf("-h: %d %q", code, out.String())
	}
	if code := p.Main([]string{"nonsense"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown command exited %d, want 2", code)
	}
}
