package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/signing"
)

func TestConfig(t *testing.T) {
	t.Setenv("NATS_URL", "nats://127.0.0.1:4222")
	cfg, err := appconf.Parse[config]()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "0.0.0.0" || cfg.Port != 8081 || cfg.StreamReplicas != 1 || cfg.LogLevel != "info" || cfg.LogFormat != "text" {
		t.Errorf("defaults = %+v", cfg)
	}

	t.Setenv("NATS_URL", "")
	if _, err := appconf.Parse[config](); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("without NATS_URL: %v, want an error naming it", err)
	}
}

// run serves until its context ends, then shuts down cleanly.
func TestRunServesAndStops(t *testing.T) {
	srv := natstest.Start(t)
	t.Setenv("REVERB_APP_ID", "app1")
	t.Setenv("REVERB_APP_KEY", "key-one")
	t.Setenv("REVERB_APP_SECRET", "secret-of-app-one-0001")
	t.Setenv("HERALD_APPS_FILE", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	cfg := config{Host: "127.0.0.1", Port: port, PathPrefix: "/ws", NATSURL: srv.ClientURL(), StreamReplicas: 1}
	go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := client.Get(base + "/up")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not up in 10 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	body := `{"name":"e","data":"x","channel":"c"}`
	q := signing.SignRequest("POST", "/apps/app1/events", nil, []byte(body), "key-one", "secret-of-app-one-0001", time.Now())
	res, err := client.Post(base+"/ws/apps/app1/events?"+q, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("event answered %d", res.StatusCode)
	}
	res, err = client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("metrics answered %d", res.StatusCode)
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
