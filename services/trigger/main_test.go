package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/errtest"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/process/processtest"
	"github.com/herald-ws/herald/shared/signing"
)

func TestSharedSettings(t *testing.T) {
	processtest.Check(t, "trigger", map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}, process.Parse[config])
}

// HERALD_TRIGGER_PORT, else PORT (serverless platforms), else 8081.
func TestPort(t *testing.T) {
	tests := []struct {
		name          string
		trigger, port string // "-": unset
		want          int
		wantErr       string
	}{
		{"default", "-", "-", 8081, ""},
		{"PORT", "-", "9000", 9000, ""},
		{"HERALD_TRIGGER_PORT first", "7000", "9000", 7000, ""},
		{"bad PORT", "-", "0", 0, "PORT=0"},
		{"bad HERALD_TRIGGER_PORT", "70000", "-", 0, "HERALD_TRIGGER_PORT=70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NATS_URL", "nats://127.0.0.1:4222")
			for k, v := range map[string]string{"HERALD_TRIGGER_PORT": tt.trigger, "PORT": tt.port} {
				processtest.Unsetenv(t, k)
				if v != "-" {
					t.Setenv(k, v)
				}
			}
			cfg, err := process.Parse[config]()
			if !errtest.Expect(t, err, tt.wantErr) {
				return
			}
			if got := cfg.port(); got != tt.want {
				t.Errorf("port = %d, want %d", got, tt.want)
			}
		})
	}
}

// The binary serves until its context ends, then shuts down cleanly.
func TestRunServesAndStops(t *testing.T) {
	srv := natstest.Start(t)
	port := natstest.FreePort(t)
	for k, v := range map[string]string{
		"REVERB_APP_ID": "app1", "REVERB_APP_KEY": "key-one", "REVERB_APP_SECRET": "secret-of-app-one-0001",
		"HERALD_APPS_FILE": "", "NATS_URL": srv.ClientURL(), "HERALD_TRIGGER_HOST": "127.0.0.1",
		"HERALD_TRIGGER_PORT": strconv.Itoa(port), "REVERB_SERVER_PATH": "ws", "HERALD_LOG_LEVEL": "warn",
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- program.Run(ctx, io.Discard, io.Discard) }()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	processtest.WaitReady(t, base)
	client := &http.Client{Timeout: 5 * time.Second}
	body := `{"name":"e","data":"x","channel":"c"}`
	q := signing.SignRequest("POST", "/ws/apps/app1/events", nil, []byte(body), "key-one", "secret-of-app-one-0001", time.Now())
	res, err := client.Post(base+"/ws/apps/app1/events?"+q, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("event answered %d", res.StatusCode)
	}
	for _, path := range []string{"/metrics", "/up", "/ws/ready"} {
		res, err = client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s answered %d", path, res.StatusCode)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
