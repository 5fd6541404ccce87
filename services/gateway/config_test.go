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
		{"empty NATS_URL", map[string]string{"NATS_URL": ""}, "NATS_URL"},
		{"bad port", map[string]string{"NATS_URL": "nats://x", "REVERB_SERVER_PORT": "70000"}, "REVERB_SERVER_PORT"},
		{"bad timeout", map[string]string{"NATS_URL": "nats://x", "HERALD_WRITE_TIMEOUT": "soon"}, "HERALD_WRITE_TIMEOUT"},
		{"bad replicas", map[string]string{"NATS_URL": "nats://x", "HERALD_STREAM_REPLICAS": "0"}, "HERALD_STREAM_REPLICAS"},
		{"gateway TTL below 1s", map[string]string{"NATS_URL": "nats://x", "HERALD_GATEWAY_TTL": "500ms"}, "HERALD_GATEWAY_TTL"},
		{"zero presence timeout", map[string]string{"NATS_URL": "nats://x", "HERALD_PRESENCE_TIMEOUT": "0s"}, "HERALD_PRESENCE_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"NATS_URL", "REVERB_SERVER_HOST", "REVERB_SERVER_PORT", "REVERB_SERVER_PATH",
				"HERALD_WRITE_QUEUE_BYTES", "HERALD_WRITE_TIMEOUT", "HERALD_STREAM_REPLICAS", "HERALD_STREAM_MAX_BYTES",
				"HERALD_GATEWAY_TTL", "HERALD_PRESENCE_TIMEOUT"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if _, ok := tt.env["NATS_URL"]; !ok {
				unsetenv(t, "NATS_URL")
			}
			c, err := parseConfig()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Host != "0.0.0.0" || c.Port != 8080 || c.WriteQueueBytes != 1<<20 || c.WriteTimeout != 10*time.Second ||
				c.StreamReplicas != 1 || c.LogLevel != "info" || c.LogFormat != "text" ||
				c.GatewayTTL != 15*time.Second || c.PresenceTimeout != 5*time.Second {
				t.Errorf("defaults: %+v", c)
			}
		})
	}
}
