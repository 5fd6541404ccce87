package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/errtest"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name, level, format, wantErr string
	}{
		{"text", "info", "text", ""},
		{"json debug", "debug", "json", ""},
		{"bad level", "loud", "text", "HERALD_LOG_LEVEL"},
		{"bad format", "info", "xml", "HERALD_LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, tt.level, tt.format)
			if !errtest.Expect(t, err, tt.wantErr) {
				return
			}
			log.Info("started", "app_id", "a")
			if tt.format == "json" && !json.Valid(bytes.TrimSpace(buf.Bytes())) {
				t.Fatalf("json output is not JSON: %s", buf.String())
			}
			if !strings.Contains(buf.String(), "app_id") {
				t.Fatalf("output lacks the field: %s", buf.String())
			}
		})
	}
}
