package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/poll"
)

func runJSON(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, append([]string{"-json", "-app-id", testAppID, "-key", testKey, "-secret", testSecret}, args...), &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	return rep, errOut.String()
}

// num digs a number out of the report: num(rep, "messages", "lost").
func num(t *testing.T, rep map[string]any, path ...string) float64 {
	t.Helper()
	var v any = rep
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not an object at %q", path, k)
		}
		v = m[k]
	}
	f, ok := v.(float64)
	if !ok {
		if v == nil {
			return 0 // omitted zero
		}
		t.Fatalf("%v = %v, not a number", path, v)
	}
	return f
}

func TestLoadAccounting(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fakeServer)
		args  []string
		want  map[string]float64 // messages.* figures
	}{
		{
			name: "clean run",
			args: []string{"-conns", "20", "-channels", "2", "-rate", "40", "-duration", "1s"},
			want: map[string]float64{"expected": 400, "delivered": 400, "lost": 0, "duplicates": 0, "out_of_order": 0},
		},
		{
			name:  "one duplicate, one loss per channel",
			setup: func(f *fakeServer) { f.duplicate, f.dropFirst = 3, 5 },
			args:  []string{"-conns", "10", "-channels", "2", "-rate", "20", "-duration", "1s"},
			// 20 events, 10 per channel, 5 subscribers each; seq 3 of
			// each channel twice to all 10, seq 5 of each channel missing
			// at one subscriber of each channel.
			want: map[string]float64{"expected": 100, "delivered": 98, "lost": 2, "duplicates": 10},
		},
		{
			name:  "held back event arrives out of order",
			setup: func(f *fakeServer) { f.holdBack = 4 },
			args:  []string{"-conns", "5", "-channels", "1", "-rate", "20", "-duration", "500ms", "-senders", "1"},
			want:  map[string]float64{"expected": 50, "delivered": 50, "out_of_order": 5, "reordered": 5},
		},
		{
			name: "private channels, batches",
			args: []string{"-conns", "6", "-channels", "3", "-private", "-rate", "60", "-duration", "1s", "-batch", "5", "-size", "1000"},
			want: map[string]float64{"expected": 120, "delivered": 120, "lost": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := startFake(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			ws := "ws" + strings.TrimPrefix(srv.URL, "http")
			// The drain ends as soon as everything arrived; with a loss it
			// runs out, under the 3 s quiet period.
			drain := "20s"
			if tc.want["lost"] > 0 {
				drain = "1s"
			}
			args := append([]string{"-ws", ws, "-api", srv.URL, "-settle", "0", "-drain", drain,
				"-server-pid", strconv.Itoa(os.Getpid())}, tc.args...)
			rep, logs := runJSON(t, args...)
			t.Log(logs)
			for k, want := range tc.want {
				if got := num(t, rep, "messages", k); got != want {
					t.Errorf("messages.%s = %v, want %v\n%s", k, got, want, logs)
				}
			}
			wantDrain := "complete"
			if tc.want["lost"] > 0 {
				wantDrain = "timeout"
			}
			if got := rep["events"].(map[string]any)["drain"]; got != wantDrain {
				t.Errorf("events.drain = %v, want %s", got, wantDrain)
			}
			if got := num(t, rep, "connections", "failed"); got != 0 {
				t.Errorf("connections.failed = %v\n%s", got, logs)
			}
			if num(t, rep, "latency", "count") == 0 || num(t, rep, "latency", "p99_ns") <= 0 {
				t.Errorf("no latency figures\n%s", logs)
			}
			if num(t, rep, "server", "rss_peak") == 0 {
				t.Errorf("no server memory figure")
			}
		})
	}
}

func TestIdleAnswersPings(t *testing.T) {
	f, srv := startFake(t)
	f.pingEach = true
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	rep, logs := runJSON(t, "-idle", "-ws", ws, "-ws", ws, "-api", srv.URL, "-conns", "30", "-duration", "300ms", "-settle", "0",
		"-server-pid", strconv.Itoa(os.Getpid()))
	if got := num(t, rep, "connections", "opened"); got != 30 {
		t.Fatalf("opened %v connections\n%s", got, logs)
	}
	if got := num(t, rep, "pings", "pings_from_server"); got != 30 {
		t.Errorf("pings from server = %v, want 30", got)
	}
	waitFor(t, func() bool { return f.pongs.Load() == 30 })
	if _, ok := rep["events"]; ok {
		t.Errorf("idle run reported events")
	}
}

func TestRefusedSubscriptionCounts(t *testing.T) {
	_, srv := startFake(t)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	var out, errOut bytes.Buffer
	// Wrong secret: private auth is refused, and so is every API request.
	err := run(context.Background(), []string{"-json", "-app-id", testAppID, "-key", testKey, "-secret", "wrong-secret-0123456",
		"-ws", ws, "-api", srv.URL, "-conns", "3", "-private", "-rate", "5", "-duration", "200ms", "-settle", "0", "-drain", "0"}, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	json.Unmarshal(out.Bytes(), &rep)
	if got := num(t, rep, "connections", "failed"); got != 3 {
		t.Errorf("failed connections = %v, want 3\n%s", got, errOut.String())
	}
	if got := num(t, rep, "events", "http_errors"); got != 1 {
		t.Errorf("http errors = %v, want 1", got)
	}
}

func TestFlags(t *testing.T) {
	checkFlags(t, []flagCase{
		{"needs credentials", []string{}, "required"},
		{"refuses a remote gateway", []string{"-app-id", "a", "-key", "k", "-secret", "s", "-ws", "ws://10.0.0.1:8080"}, "not a loopback"},
		{"refuses a remote API", []string{"-app-id", "a", "-key", "k", "-secret", "s", "-api", "http://example.com"}, "not a loopback"},
		{"bounds connections", []string{"-app-id", "a", "-key", "k", "-secret", "s", "-conns", "10000000"}, "-conns"},
		{"batch at most 10", []string{"-app-id", "a", "-key", "k", "-secret", "s", "-batch", "11"}, "-batch"},
		{"coldstart needs a command", []string{"-app-id", "a", "-key", "k", "-secret", "s", "-coldstart"}, "command"},
		{"localhost is fine", []string{"-app-id", "a", "-key", "k", "-secret", "s", "-ws", "ws://localhost:1", "-api", "http://[::1]:2"}, ""},
	})
}

// The test binary doubles as the process a cold start launches: with
// LOADGEN_FAKE_TRIGGER set it serves the fake API on that address.
func TestMain(m *testing.M) {
	if addr := os.Getenv("LOADGEN_FAKE_TRIGGER"); addr != "" {
		serveFakeTrigger(addr)
		return
	}
	os.Exit(m.Run())
}

func serveFakeTrigger(addr string) {
	time.Sleep(50 * time.Millisecond) // a start-up to measure
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Exit(3)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: newFake().handler()}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	_ = srv.Serve(ln)
}

func TestColdStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("LOADGEN_FAKE_TRIGGER", addr)
	rep, logs := runJSON(t, "-coldstart", "-runs", "2", "-api", "http://"+addr, "--", os.Args[0])
	if got := num(t, rep, "failed"); got != 0 {
		t.Fatalf("failed runs: %v\n%s", got, logs)
	}
	if min := num(t, rep, "first_event_min_ns"); min < float64(50*time.Millisecond) {
		t.Fatalf("first event after %v, before the fake could listen", time.Duration(min))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	poll.Until(t, poll.Patience, "condition", cond)
}

// flagCase is a command line and the error parseFlags should give (empty:
// none).
type flagCase struct {
	name    string
	args    []string
	wantErr string
}

// checkFlags fails t unless parseFlags fails on each case's arguments with
// an error mentioning its wantErr, or succeeds where wantErr is empty.
func checkFlags(t *testing.T, cases []flagCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, &bytes.Buffer{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
