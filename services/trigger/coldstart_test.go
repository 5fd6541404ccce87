//go:build coldstart

// Cold start of the trigger binary: from exec to the first event stored
// (the first 200 on /events), against a running JetStream server. Not part
// of the normal test run:
//
//	go test -tags coldstart -run '^$' -bench ColdStart -benchtime 20x .
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/bintest"
	"github.com/herald-ws/herald/shared/events/eventstest"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/signing"
)

const (
	coldKey    = "cold-start-key"
	coldSecret = "cold-start-secret-0123456789"
)

func TestMain(m *testing.M) { bintest.Main(m) }

func BenchmarkColdStart(b *testing.B) {
	srv := natstest.Start(b)
	bin := filepath.Join(bintest.Build(b, "trigger"), "trigger")

	// A stream that exists already: the usual case of a serverless restart.
	_, js := natstest.JetStream(b, srv)
	eventstest.Ensure(b, js, eventstest.App(b, appconf.App{ID: "warm", Key: coldKey, Secret: coldSecret}))

	for _, mode := range []string{"existing-stream", "new-stream"} {
		b.Run(mode, func(b *testing.B) {
			b.StopTimer()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				app := "warm"
				if mode == "new-stream" {
					app = fmt.Sprintf("cold%d", time.Now().UnixNano())
				}
				total += startOnce(b, bin, srv.ClientURL(), app)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/start")
		})
	}
}

// startOnce runs the binary until it stores one event and returns the time
// from exec to the 200.
func startOnce(b *testing.B, bin, natsURL, app string) time.Duration {
	b.Helper()
	port := natstest.FreePort(b)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"NATS_URL="+natsURL,
		"HERALD_TRIGGER_HOST=127.0.0.1",
		"HERALD_TRIGGER_PORT="+strconv.Itoa(port),
		"REVERB_APP_ID="+app,
		"REVERB_APP_KEY="+coldKey,
		"REVERB_APP_SECRET="+coldSecret,
		"HERALD_LOG_LEVEL=warn",
	)
	cmd.Stderr = os.Stderr
	body := `{"name":"e","data":"x","channel":"c"}`
	path := "/apps/" + app + "/events"
	client := &http.Client{Timeout: 5 * time.Second}

	b.StartTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill() }) // after a failure; a no-op once it exited
	var took time.Duration
	for {
		q := signing.SignRequest("POST", path, nil, []byte(body), coldKey, coldSecret, time.Now())
		res, err := client.Post(fmt.Sprintf("http://127.0.0.1:%d%s?%s", port, path, q), "application/json", strings.NewReader(body))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				took = time.Since(start)
				break
			}
			// 503 while it still connects to NATS and ensures the stream.
			if res.StatusCode != http.StatusServiceUnavailable {
				b.Fatalf("first answer %d", res.StatusCode)
			}
		}
		if time.Since(start) > 10*time.Second {
			b.Fatalf("no answer in 10 s: %v", err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	b.StopTimer()

	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("trigger exited: %v", err)
	}
	return took
}
