// Package processtest holds the one table of the settings that several
// binaries read, with their defaults and limits, and runs it against a
// binary's own parser: every binary's tests run it, so a setting has the
// same default and minimum in each.
package processtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Setting is one setting shared by several binaries.
type Setting struct {
	Name    string
	Default string // as fmt.Sprint prints the parsed field
	// Lowest is the smallest accepted value, Below the largest refused one
	// ("" when the setting has no bound).
	Lowest, Below string
	// Binaries lists who reads it: "all" or names.
	Binaries []string
}

// Shared is the table.
var Shared = []Setting{
	{"HERALD_STREAM_REPLICAS", "1", "1", "0", []string{"all"}},
	{"HERALD_STREAM_MAX_BYTES", "1073741824", "1048576", "1048575", []string{"all"}},
	{"HERALD_SHUTDOWN_TIMEOUT", "10s", "1ns", "0s", []string{"all"}},
	{"HERALD_HTTP_READ_TIMEOUT", "30s", "1s", "999ms", []string{"all"}},
	{"HERALD_HTTP_IDLE_TIMEOUT", "1m5s", "1s", "999ms", []string{"all"}},
	{"HERALD_HTTP_MAX_HEADER_BYTES", "65536", "4096", "4095", []string{"all"}},
	{"HERALD_LOG_LEVEL", "info", "", "", []string{"all"}},
	{"HERALD_LOG_FORMAT", "text", "", "", []string{"all"}},
	{"REVERB_SERVER_PATH", "", "", "", []string{"all"}},
	{"HERALD_METRICS_ADDR", "", "", "", []string{"all"}},
	{"HERALD_PPROF_ADDR", "", "", "", []string{"all"}},
	{"HERALD_WRITE_QUEUE_BYTES", "1048576", "65536", "65535", []string{"herald", "gateway"}},
	{"HERALD_WRITE_TIMEOUT", "10s", "1ns", "0s", []string{"herald", "gateway"}},
	{"HERALD_GATEWAY_TTL", "15s", "1s", "999ms", []string{"herald", "gateway"}},
	{"HERALD_PRESENCE_TIMEOUT", "5s", "1ns", "0s", []string{"herald", "gateway"}},
	{"HERALD_PUBLISH_RETRY_FOR", "25s", "0s", "-1ns", []string{"herald", "trigger"}},
	{"HERALD_PRESENCE_DRAIN_GRACE", "10s", "0s", "-1ns", []string{"herald", "presence"}},
	{"HERALD_PRESENCE_LOCK_TTL", "10s", "1s", "999ms", []string{"herald", "presence"}},
	{"HERALD_PRESENCE_FLUSH_INTERVAL", "50ms", "1ns", "0s", []string{"herald", "presence"}},
	{"HERALD_WEBHOOK_RETRY_FOR", "5m0s", "1ns", "0s", []string{"herald", "presence"}},
	{"HERALD_WEBHOOK_TIMEOUT", "5s", "1ns", "0s", []string{"herald", "presence"}},
	{"HERALD_ADMIN_TOKEN", "", "0123456789abcdef", "0123456789abcde", []string{"herald", "trigger"}},
	{"HERALD_LOG_CONNECTIONS", "false", "", "", []string{"herald", "gateway"}},
	{"HERALD_LOG_PAYLOADS", "false", "", "", []string{"herald", "gateway", "trigger"}},
}

// For returns the shared settings binary reads.
func For(binary string) []Setting {
	var out []Setting
	for _, s := range Shared {
		for _, b := range s.Binaries {
			if b == "all" || b == binary {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Check runs binary's shared settings against parse, which reads the
// binary's settings struct from the environment: with only base set, each
// field tagged with the setting's name holds its default; each setting's
// lowest value is accepted and the value below it refused with an error
// naming it.
func Check[T any](t *testing.T, binary string, base map[string]string, parse func() (T, error)) {
	t.Helper()
	settings := For(binary)
	clear := func(t *testing.T) {
		for _, s := range settings {
			Unsetenv(t, s.Name)
		}
		for k, v := range base {
			t.Setenv(k, v)
		}
	}
	t.Run("defaults", func(t *testing.T) {
		clear(t)
		cfg, err := parse()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range settings {
			f, ok := field(reflect.ValueOf(cfg), s.Name)
			if !ok {
				t.Errorf("%s: %s is not read by the settings struct %T", binary, s.Name, cfg)
				continue
			}
			if got := fmt.Sprint(f.Interface()); got != s.Default {
				t.Errorf("%s: %s defaults to %q, want %q", binary, s.Name, got, s.Default)
			}
		}
	})
	for _, s := range settings {
		if s.Below == "" {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			clear(t)
			t.Setenv(s.Name, s.Lowest)
			if _, err := parse(); err != nil {
				t.Errorf("%s=%s refused: %v", s.Name, s.Lowest, err)
			}
			t.Setenv(s.Name, s.Below)
			if _, err := parse(); err == nil || !strings.Contains(err.Error(), s.Name) {
				t.Errorf("%s=%s: err = %v, want one naming %s", s.Name, s.Below, err, s.Name)
			}
		})
	}
}

// field finds the field tagged env:"name" in v or its struct fields.
func field(v reflect.Value, name string) (reflect.Value, bool) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if tag, _, _ := strings.Cut(sf.Tag.Get("env"), ","); tag == name {
			return v.Field(i), true
		}
		if sf.Type.Kind() == reflect.Struct && sf.IsExported() {
			if f, ok := field(v.Field(i), name); ok {
				return f, true
			}
		}
	}
	return reflect.Value{}, false
}

// Unsetenv removes a variable for the rest of the test; t.Setenv first
// records the value to restore.
func Unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}

// WaitReady polls base+"/ready" until it answers 200, for up to a minute.
func WaitReady(t testing.TB, base string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		res, err := client.Get(base + "/ready")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/ready never answered 200 (last: %s)", base, last)
}
