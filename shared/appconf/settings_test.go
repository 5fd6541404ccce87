package appconf

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/errtest"
)

func setApp(t *testing.T) {
	t.Helper()
	clearAppEnv(t)
	t.Setenv("REVERB_APP_ID", "shop")
	t.Setenv("REVERB_APP_KEY", "shop-key")
	t.Setenv("REVERB_APP_SECRET", "0123456789abcdef0123")
}

func envApp(t *testing.T) *App {
	t.Helper()
	a, _ := envRegistry(t).ByID("shop")
	return a
}

// envRegistry is the registry of the apps the environment configures.
func envRegistry(t *testing.T) *Registry {
	t.Helper()
	e, err := ParseEnv()
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Registry()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClientEventSwitch(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		want     string
		wantRate int
		wantErr  string
	}{
		{"default", nil, ClientEventsFromMembers, 10, ""},
		{"members", map[string]string{"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "members"}, ClientEventsFromMembers, 10, ""},
		{"all", map[string]string{"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "all"}, ClientEventsFromAll, 10, ""},
		{"none", map[string]string{"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": " None "}, ClientEventsFromNone, 10, ""},
		{"rate 0 is off", map[string]string{"HERALD_CLIENT_EVENTS_PER_SECOND": "0"}, ClientEventsFromNone, 10, ""},
		{"rate 0 and none", map[string]string{"HERALD_CLIENT_EVENTS_PER_SECOND": "0", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "none"}, ClientEventsFromNone, 10, ""},
		{"rate 3", map[string]string{"HERALD_CLIENT_EVENTS_PER_SECOND": "3"}, ClientEventsFromMembers, 3, ""},
		{"rate 0 and members", map[string]string{"HERALD_CLIENT_EVENTS_PER_SECOND": "0", "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "members"}, "", 0, "HERALD_CLIENT_EVENTS_PER_SECOND is 0"},
		{"unknown value", map[string]string{"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "everyone"}, "", 0, "want all, members or none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setApp(t)
			t.Setenv("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "")
			t.Setenv("HERALD_CLIENT_EVENTS_PER_SECOND", "10")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			e, err := ParseEnv()
			if err == nil {
				_, err = e.Registry()
			}
			if !errtest.Expect(t, err, tt.wantErr) {
				return
			}
			a := envApp(t)
			if a.AcceptClientEventsFrom != tt.want || a.ClientEventsOff() != (tt.want == ClientEventsFromNone) {
				t.Errorf("accept_client_events_from = %q, want %q", a.AcceptClientEventsFrom, tt.want)
			}
			if a.ClientEventsPerSecond != tt.wantRate {
				t.Errorf("rate = %d, want %d", a.ClientEventsPerSecond, tt.wantRate)
			}
		})
	}
}

func TestAppsFileClientEvents(t *testing.T) {
	tests := []struct {
		name, fields string
		want         string
		wantErr      string
	}{
		{"absent rate", ``, ClientEventsFromMembers, ""},
		{"explicit 0", `,"client_events_per_second":0`, ClientEventsFromNone, ""},
		{"none", `,"accept_client_events_from":"none"`, ClientEventsFromNone, ""},
		{"0 and all", `,"client_events_per_second":0,"accept_client_events_from":"all"`, "", "client_events_per_second is 0"},
		{"bad switch", `,"accept_client_events_from":"some"`, "", "want all, members or none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := decodeApps(strings.NewReader(`{"apps":[{"id":"a","key":"k","secret":"0123456789abcdef0123"`+tt.fields+`}]}`), "test")
			var r *Registry
			if err == nil {
				r, err = NewRegistry(apps)
			}
			if !errtest.Expect(t, err, tt.wantErr) {
				return
			}
			a, _ := r.ByID("a")
			if a.AcceptClientEventsFrom != tt.want {
				t.Errorf("accept_client_events_from = %q, want %q", a.AcceptClientEventsFrom, tt.want)
			}
		})
	}
}

func TestDurationsInSeconds(t *testing.T) {
	type settings struct {
		D time.Duration `env:"HERALD_TEST_DURATION" envDefault:"10s"`
	}
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"300", 300 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"5m", 5 * time.Minute, true},
		{"250ms", 250 * time.Millisecond, true},
		{" 30 ", 30 * time.Second, true},
		{"", 10 * time.Second, true}, // the default
		{"soon", 0, false},
		{"1e300", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Setenv("HERALD_TEST_DURATION", tt.in)
			if tt.in == "" {
				os.Unsetenv("HERALD_TEST_DURATION")
			}
			s, err := Parse[settings]()
			if (err == nil) != tt.ok {
				t.Fatalf("Parse(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "HERALD_TEST_DURATION") {
				t.Errorf("error %q does not name the setting", err)
			}
			if tt.ok && s.D != tt.want {
				t.Errorf("Parse(%q) = %v, want %v", tt.in, s.D, tt.want)
			}
		})
	}
}

func TestDotenvLoading(t *testing.T) {
	setApp(t)
	dir := t.TempDir()
	t.Chdir(dir)
	// Not in .env and not in the environment: the default.
	os.Unsetenv("REVERB_APP_MAX_CONNECTIONS")
	t.Setenv("REVERB_APP_ACTIVITY_TIMEOUT", "20") // set in both: the environment wins
	os.Unsetenv("HERALD_REPLAY_WINDOW")
	os.Unsetenv("REVERB_APP_PING_INTERVAL")
	dotenv := strings.Join([]string{
		"# Laravel's .env",
		"APP_NAME=Shop",
		"REVERB_APP_ACTIVITY_TIMEOUT=99",
		"export REVERB_APP_PING_INTERVAL=45 # seconds",
		`HERALD_REPLAY_WINDOW="120"`,
		`VITE_REVERB_APP_KEY="${REVERB_APP_KEY}"`,
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, DotenvFile), []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	a := envApp(t)
	if a.ActivityTimeout.D() != 20*time.Second {
		t.Errorf("activity timeout %v: the environment's 20s should win over .env", a.ActivityTimeout.D())
	}
	if a.PingInterval.D() != 45*time.Second {
		t.Errorf("ping interval %v, want .env's 45s", a.PingInterval.D())
	}
	if a.ReplayWindow.D() != 2*time.Minute {
		t.Errorf("replay window %v, want .env's 120 seconds", a.ReplayWindow.D())
	}
	if a.MaxConnections != 0 {
		t.Errorf("max connections %d, want the default", a.MaxConnections)
	}
	vars, err := Environment()
	if err != nil {
		t.Fatal(err)
	}
	if vars["VITE_REVERB_APP_KEY"] != "shop-key" {
		t.Errorf("VITE_REVERB_APP_KEY = %q, want the environment's REVERB_APP_KEY", vars["VITE_REVERB_APP_KEY"])
	}

	// A broken .env is an error that names the file and the line.
	if err := os.WriteFile(filepath.Join(dir, DotenvFile), []byte("A=1\nB=\"open\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseEnv(); err == nil || !strings.Contains(err.Error(), ".env") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("broken .env: %v", err)
	}
}

func TestWarnForeign(t *testing.T) {
	setApp(t)
	t.Chdir(t.TempDir())
	set := map[string]string{
		"REVERB_SCALING_ENABLED":               "true",
		"REVERB_SCALING_CHANNEL":               "reverb",
		"REVERB_MAX_REQUEST_SIZE":              "20000",
		"REVERB_APP_MAX_REQUEST_SIZE":          "20000",
		"REVERB_APP_RATE_LIMITING_ENABLED":     "true",
		"REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS":   "60",
		"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM": "all",
		"REVERB_PULSE_INGEST_INTERVAL":         "15",
		"SOKETI_DEFAULT_APP_ID":                "app-id",
	}
	for k, v := range set {
		t.Setenv(k, v)
	}
	t.Setenv("REVERB_APP_RATE_LIMIT_DECAY_SECONDS", "") // empty: not set
	var buf bytes.Buffer
	WarnForeign(slog.New(slog.NewTextHandler(&buf, nil)))
	out := buf.String()
	for name := range set {
		if name == "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM" {
			name += "=all"
		}
		if n := strings.Count(out, "setting="+name+" ") + strings.Count(out, `setting="`+name+`"`); n != 1 {
			t.Errorf("%d warnings for %s, want 1:\n%s", n, name, out)
		}
	}
	for _, want := range []string{"HERALD_MAX_EVENT_BYTES", "NATS_URL", "HERALD_CLIENT_EVENTS_PER_SECOND", "REVERB_APP_SECRET"} {
		if !strings.Contains(out, want) {
			t.Errorf("no warning says to use %s:\n%s", want, out)
		}
	}
	for _, quiet := range []string{"REVERB_APP_RATE_LIMIT_DECAY_SECONDS", "REVERB_APP_ID", "REVERB_APP_KEY"} {
		if strings.Contains(out, "setting="+quiet+" ") {
			t.Errorf("warned about %s:\n%s", quiet, out)
		}
	}
	t.Setenv("REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM", "members")
	buf.Reset()
	WarnForeign(slog.New(slog.NewTextHandler(&buf, nil)))
	if strings.Contains(buf.String(), "ACCEPT_CLIENT_EVENTS_FROM") {
		t.Errorf("warned about accept_client_events_from=members:\n%s", buf.String())
	}
}
