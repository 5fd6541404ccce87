package main

import (
	"testing"

	"github.com/herald-ws/herald/shared/errtest"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/process/processtest"
)

// The settings the gateway shares with other binaries: defaults and limits
// from the one table.
func TestSharedSettings(t *testing.T) {
	processtest.Check(t, "gateway", map[string]string{"NATS_URL": "nats://127.0.0.1:4222"}, process.Parse[config])
}

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
		{"cert without key", map[string]string{"NATS_URL": "nats://x", "HERALD_NATS_TLS_CERT": "/etc/hostname"}, "HERALD_NATS_TLS_KEY"},
		{"missing creds file", map[string]string{"NATS_URL": "nats://x", "HERALD_NATS_CREDS": "/nonexistent.creds"}, "HERALD_NATS_CREDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"NATS_URL", "REVERB_SERVER_HOST", "REVERB_SERVER_PORT", "REVERB_SERVER_PATH",
				"HERALD_WRITE_TIMEOUT", "HERALD_NATS_TLS_CERT", "HERALD_NATS_TLS_KEY", "HERALD_NATS_CREDS"} {
				processtest.Unsetenv(t, k)
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := process.Parse[config]()
			if !errtest.Expect(t, err, tt.wantErr) {
				return
			}
			if c.Server.Host != "0.0.0.0" || c.Server.Port != 8080 {
				t.Errorf("defaults: %+v", c)
			}
		})
	}
}
