package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/process/processtest"
)

var discard = slog.New(slog.DiscardHandler)

func TestSharedSettings(t *testing.T) {
	processtest.Check(t, "herald", nil, process.Parse[config])
}

// REVERB_SERVER_PATH means the same in every binary: "ws", "/ws" and "/ws/"
// are "/ws".
func TestServerPathNormalised(t *testing.T) {
	for _, p := range []string{"ws", "/ws", "/ws/", "ws/"} {
		t.Setenv("REVERB_SERVER_PATH", p)
		cfg, err := process.Parse[config]()
		if err != nil || cfg.Process.Path != "/ws" {
			t.Errorf("REVERB_SERVER_PATH=%q: %q, %v", p, cfg.Process.Path, err)
		}
	}
}

func TestGeneratedAppIsKeptAcrossStarts(t *testing.T) {
	for _, k := range []string{"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET", "HERALD_APPS_FILE"} {
		t.Setenv(k, "")
	}
	cfg := &config{DataDir: t.TempDir(), Server: process.ReverbServer{Host: "0.0.0.0", Port: 8080}}
	var out1, out2 bytes.Buffer
	r1, err := resolveApps(cfg, &out1, discard)
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	r2, err := resolveApps(cfg, &out2, discard)
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	a1, a2 := r1.All()[0], r2.All()[0]
	if a1.ID != a2.ID || a1.Key != a2.Key || a1.Secret != a2.Secret {
		t.Fatalf("restart changed the app: %+v then %+v", a1, a2)
	}
	if len(a1.Secret) < 16 {
		t.Fatalf("generated secret %q is short", a1.Secret)
	}
	for _, want := range []string{"BROADCAST_CONNECTION=reverb", "REVERB_APP_KEY=" + a1.Key, "REVERB_APP_SECRET=" + a1.Secret, "REVERB_PORT=8080", "REVERB_HOST=localhost"} {
		if !strings.Contains(out1.String(), want) {
			t.Errorf("printed .env lacks %q:\n%s", want, out1.String())
		}
	}
	if !strings.Contains(out1.String(), "Generated") {
		t.Errorf("first start should say Generated:\n%s", out1.String())
	}
	// The secret is printed when it is generated, never again.
	if out2.Len() != 0 {
		t.Errorf("second start printed:\n%s", out2.String())
	}
	if !strings.Contains(out1.String(), filepath.Join(cfg.DataDir, "app.json")) {
		t.Errorf("output does not name the file that keeps the app")
	}
}

func TestConfiguredAppWins(t *testing.T) {
	t.Setenv("REVERB_APP_ID", "shop")
	t.Setenv("REVERB_APP_KEY", "shop-key")
	t.Setenv("REVERB_APP_SECRET", "0123456789abcdef0123")
	var out bytes.Buffer
	r, err := resolveApps(&config{DataDir: t.TempDir()}, &out, discard)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := r.ByKey("shop-key"); !ok || a.ID != "shop" {
		t.Fatalf("configured app not found: %+v", r.All())
	}
	if out.Len() != 0 {
		t.Errorf("printed .env lines for a configured app: %s", out.String())
	}
}

func TestBadSettingsStopStartup(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"port", "REVERB_SERVER_PORT", "70000", "REVERB_SERVER_PORT"},
		{"port not a number", "REVERB_SERVER_PORT", "http", "REVERB_SERVER_PORT"},
		{"replicas", "HERALD_STREAM_REPLICAS", "0", "HERALD_STREAM_REPLICAS"},
		{"timeout", "HERALD_WRITE_TIMEOUT", "soon", "HERALD_WRITE_TIMEOUT"},
		{"gateway TTL", "HERALD_GATEWAY_TTL", "500ms", "HERALD_GATEWAY_TTL"},
		{"presence timeout", "HERALD_PRESENCE_TIMEOUT", "0s", "HERALD_PRESENCE_TIMEOUT"},
		{"negative drain grace", "HERALD_PRESENCE_DRAIN_GRACE", "-1s", "HERALD_PRESENCE_DRAIN_GRACE"},
		{"lock TTL", "HERALD_PRESENCE_LOCK_TTL", "100ms", "HERALD_PRESENCE_LOCK_TTL"},
		{"flush interval", "HERALD_PRESENCE_FLUSH_INTERVAL", "2s", "HERALD_PRESENCE_FLUSH_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.key, tt.value)
			_, err := process.Parse[config]()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("settings: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestSecretRules(t *testing.T) {
	t.Setenv("REVERB_APP_ID", "shop")
	t.Setenv("REVERB_APP_KEY", "shop-key")
	t.Setenv("REVERB_APP_SECRET", "tiny")
	if _, err := resolveApps(&config{DataDir: t.TempDir()}, &bytes.Buffer{}, discard); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("short secret: %v", err)
	}
	t.Setenv("REVERB_APP_SECRET", "")
	if _, err := resolveApps(&config{DataDir: t.TempDir()}, &bytes.Buffer{}, discard); err == nil || !strings.Contains(err.Error(), "REVERB_APP_SECRET") {
		t.Fatalf("missing secret: %v", err)
	}
}
