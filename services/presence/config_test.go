package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"defaults", map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}, ""},
		{"no NATS_URL", map[string]string{}, "NATS_URL"},
		{"bad port", map[string]string{"NATS_URL": "nats://x", "HERALD_PRESENCE_PORT": "70000"}, "HERALD_PRESENCE_PORT"},
		{"short lock", map[string]string{"NATS_URL": "nats://x", "HERALD_PRESENCE_LOCK_TTL": "500ms"}, "HERALD_PRESENCE_LOCK_TTL"},
		{"negative grace", map[string]string{"NATS_URL": "nats://x", "HERALD_PRESENCE_DRAIN_GRACE": "-1s"}, "HERALD_PRESENCE_DRAIN_GRACE"},
		{"slow flush", map[string]string{"NATS_URL": "nats://x", "HERALD_PRESENCE_FLUSH_INTERVAL": "2s"}, "HERALD_PRESENCE_FLUSH_INTERVAL"},
		{"no webhook retry", map[string]string{"NATS_URL": "nats://x", "HERALD_WEBHOOK_RETRY_FOR": "0s"}, "HERALD_WEBHOOK_RETRY_FOR"},
		{"negative webhook timeout", map[string]string{"NATS_URL": "nats://x", "HERALD_WEBHOOK_TIMEOUT": "-1s"}, "HERALD_WEBHOOK_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"NATS_URL", "HERALD_PRESENCE_PORT", "HERALD_PRESENCE_LOCK_TTL",
				"HERALD_PRESENCE_DRAIN_GRACE", "HERALD_PRESENCE_FLUSH_INTERVAL", "HERALD_WEBHOOK_RETRY_FOR", "HERALD_WEBHOOK_TIMEOUT"} {
				t.Setenv(k, tt.env[k])
			}
			c, err := parseConfig()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Port != 8082 || c.Host != "0.0.0.0" || c.DrainGrace != 10*time.Second || c.LockTTL != 10*time.Second ||
					c.WebhookRetryFor != 5*time.Minute || c.WebhookTimeout != 5*time.Second {
					t.Fatalf("defaults: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}
