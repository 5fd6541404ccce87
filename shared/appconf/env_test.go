package appconf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// clearAppEnv unsets the app settings that a developer's shell may hold.
func clearAppEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"REVERB_APP_ID", "REVERB_APP_KEY", "REVERB_APP_SECRET", "HERALD_APPS_FILE"} {
		t.Setenv(k, "")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "apps.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnvSingleApp(t *testing.T) {
	clearAppEnv(t)
	t.Setenv("REVERB_APP_ID", "shop")
	t.Setenv("REVERB_APP_KEY", "shop-key")
	t.Setenv("REVERB_APP_SECRET", "0123456789abcdef0123")
	t.Setenv("REVERB_APP_MAX_MESSAGE_SIZE", "2000")
	t.Setenv("REVERB_APP_ACTIVITY_TIMEOUT", "20")
	t.Setenv("HERALD_REPLAY_WINDOW", "90s")
	t.Setenv("HERALD_ALLOWED_ORIGINS", "https://a.example,https://b.example")
	t.Setenv("HERALD_WEBHOOK_URLS", "https://hooks.example/x, ,https://hooks.example/y")

	e, err := ParseEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !e.HasApp() {
		t.Fatal("HasApp = false")
	}
	r, err := e.Registry()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := r.ByID("shop")
	if !ok {
		t.Fatal("app shop not found by id")
	}
	if b, ok := r.ByKey("shop-key"); !ok || b != a {
		t.Fatal("app shop not found by key")
	}
	if len(r.All()) != 1 {
		t.Errorf("%d apps, want 1", len(r.All()))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"secret", a.Secret, "0123456789abcdef0123"},
		{"max message size", a.MaxMessageSize, 2000},
		{"activity timeout", a.ActivityTimeout.D(), 20 * time.Second},
		{"ping interval (default)", a.PingInterval.D(), 60 * time.Second},
		{"replay window", a.ReplayWindow.D(), 90 * time.Second},
		{"replay events (default)", a.ReplayMaxEvents, 1000},
		{"event bytes (default)", a.MaxEventBytes, 10_240},
		{"presence members (default)", a.MaxPresenceMembers, 100},
		{"origins", strings.Join(a.AllowedOrigins, " "), "https://a.example https://b.example"},
		{"webhooks", len(a.Webhooks), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEnvAppsFile(t *testing.T) {
	clearAppEnv(t)
	t.Setenv("HERALD_APPS_FILE", writeFile(t, `{"apps":[
		{"id":"one","key":"key-1","secret":"secret-number-one-0001","max_event_bytes":20000,"replay_window":600},
		{"id":"two","key":"key-2","secret":"secret-number-two-0002","disabled":true,"replay_window":"2m",
		 "webhooks":[{"url":"https://hooks.example/h","event_types":["channel_occupied"]}]}
	]}`))
	r := envRegistry(t)
	one, ok1 := r.ByID("one")
	two, ok2 := r.ByKey("key-2")
	if !ok1 || !ok2 {
		t.Fatalf("apps missing: %v %v", ok1, ok2)
	}
	if one.MaxEventBytes != 20000 || one.ReplayWindow.D() != 10*time.Minute || one.MaxMessageSize != 10_000 {
		t.Errorf("one = %+v", one)
	}
	if !two.Disabled || two.ReplayWindow.D() != 2*time.Minute || two.MaxEventBytes != 10_240 || len(two.Webhooks) != 1 {
		t.Errorf("two = %+v", two)
	}
}

func TestEnvErrors(t *testing.T) {
	file := writeFile(t, `{"apps":[{"id":"a","key":"k","secret":"0123456789abcdef0123"}]}`)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // each must appear in the error
		is      error
	}{
		{"nothing set", nil, nil, ErrNoApp},
		{"both set", map[string]string{"REVERB_APP_ID": "a", "HERALD_APPS_FILE": file}, []string{"both"}, nil},
		{"key missing", map[string]string{"REVERB_APP_ID": "a", "REVERB_APP_SECRET": "0123456789abcdef0123"}, []string{"REVERB_APP_KEY"}, nil},
		{"secret missing", map[string]string{"REVERB_APP_ID": "a", "REVERB_APP_KEY": "k"}, []string{"REVERB_APP_SECRET"}, nil},
		{"only the id", map[string]string{"REVERB_APP_ID": "a"}, []string{"REVERB_APP_KEY", "REVERB_APP_SECRET"}, nil},
		{"no apps file", map[string]string{"HERALD_APPS_FILE": filepath.Join(t.TempDir(), "none.json")}, []string{"apps file"}, os.ErrNotExist},
		{"bad number", map[string]string{"REVERB_APP_ID": "a", "REVERB_APP_MAX_MESSAGE_SIZE": "big"}, []string{"reading app settings"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearAppEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			e, err := ParseEnv()
			if err == nil {
				_, err = e.Registry()
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if tt.name == "key missing" && strings.Contains(err.Error(), "REVERB_APP_SECRET") {
				t.Errorf("error %q names a setting that is set", err)
			}
		})
	}
}

func TestRegistryRefuses(t *testing.T) {
	good := func() App { return App{ID: "a", Key: "k", Secret: "0123456789abcdef0123"} }
	with := func(f func(*App)) []App { a := good(); f(&a); return []App{a} }
	tests := []struct {
		name    string
		apps    []App
		wantErr string
	}{
		{"no app", nil, "no app"},
		{"short secret", with(func(a *App) { a.Secret = "short-secret" }), "shorter"},
		{"published secret", with(func(a *App) { a.Secret = "7ad3773142a6692b25b8" }), "published"},
		{"published secret in capitals", with(func(a *App) { a.Secret = "7AD3773142A6692B25B8" }), "published"},
		{"empty id", with(func(a *App) { a.ID = "" }), "id"},
		{"long id", with(func(a *App) { a.ID = strings.Repeat("i", 65) }), "id"},
		{"empty key", with(func(a *App) { a.Key = "" }), "key"},
		{"key with a slash", with(func(a *App) { a.Key = "a/b" }), "key"},
		{"negative limit", with(func(a *App) { a.MaxEventBytes = -1 }), "negative"},
		{"negative duration", with(func(a *App) { a.ReplayWindow = Duration(-time.Second) }), "negative"},
		{"webhook not http", with(func(a *App) { a.Webhooks = []Webhook{{URL: "ftp://x.example"}} }), "webhook"},
		{"duplicate id", []App{good(), func() App { a := good(); a.Key = "k2"; return a }()}, "twice"},
		{"duplicate key", []App{good(), func() App { a := good(); a.ID = "b"; return a }()}, "another app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistry(tt.apps)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewRegistry = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestAppsFileRefuses(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"unknown field", `{"apps":[{"id":"a","key":"k","secret":"0123456789abcdef0123","max_event_byte":1}]}`, "max_event_byte"},
		{"no apps", `{"apps":[]}`, "no apps"},
		{"not JSON", `apps: []`, "apps file"},
		{"bad duration", `{"apps":[{"id":"a","key":"k","secret":"0123456789abcdef0123","replay_window":"soon"}]}`, "soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadAppsFile(writeFile(t, tt.content))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ReadAppsFile = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	a, b := Generate(), Generate()
	if _, err := NewRegistry([]App{a, b}); err != nil {
		t.Fatalf("generated apps refused: %v", err)
	}
	if a.Secret == b.Secret || len(RandomHex(16)) != 32 {
		t.Error("generated values repeat or have the wrong length")
	}
	if !slices.ContainsFunc([]byte(a.ID), func(c byte) bool { return c >= '0' && c <= '9' }) {
		t.Errorf("id %q is not numeric", a.ID)
	}
}

func TestParseErrorNamesTheVariable(t *testing.T) {
	t.Setenv("REVERB_APP_MAX_MESSAGE_SIZE", "big")
	_, err := ParseEnv()
	if err == nil || !strings.Contains(err.Error(), "REVERB_APP_MAX_MESSAGE_SIZE") {
		t.Fatalf("ParseEnv() = %v, want an error naming REVERB_APP_MAX_MESSAGE_SIZE", err)
	}
}
