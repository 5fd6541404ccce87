package appconf

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Registry looks apps up by id (HTTP API) and by key (WebSocket URL).
type Registry struct {
	apps  []*App
	byID  map[string]*App
	byKey map[string]*App
}

// NewRegistry checks apps and fills their defaults.
func NewRegistry(apps []App) (*Registry, error) {
	r := &Registry{byID: map[string]*App{}, byKey: map[string]*App{}}
	if len(apps) == 0 {
		return nil, errors.New("no app configured")
	}
	for i := range apps {
		a := apps[i]
		if err := a.validate(); err != nil {
			return nil, fmt.Errorf("app %d (%q): %w", i, a.ID, err)
		}
		a.withDefaults()
		if _, dup := r.byID[a.ID]; dup {
			return nil, fmt.Errorf("app id %q is configured twice", a.ID)
		}
		if _, dup := r.byKey[a.Key]; dup {
			return nil, fmt.Errorf("app key of %q is used by another app", a.ID)
		}
		r.apps = append(r.apps, &a)
		r.byID[a.ID] = &a
		r.byKey[a.Key] = &a
	}
	return r, nil
}

// ByID returns the app with that id.
func (r *Registry) ByID(id string) (*App, bool) { a, ok := r.byID[id]; return a, ok }

// ByKey returns the app with that key.
func (r *Registry) ByKey(key string) (*App, bool) { a, ok := r.byKey[key]; return a, ok }

// All returns every app.
func (r *Registry) All() []*App { return slices.Clone(r.apps) }

// Secrets that are published in guides and defaults: anyone could sign with them.
var wellKnownSecrets = []string{
	"secret", "app-secret", "app_secret", "appsecret", "pusher-secret", "reverb-secret",
	"changeme", "change-me", "password", "your-secret", "your_app_secret", "my-secret",
	"7ad3773142a6692b25b8", // Pusher's documentation example
}

// MinSecretLength is the shortest secret accepted.
const MinSecretLength = 16

func (a *App) validate() error {
	switch {
	case a.ID == "":
		return errors.New("id is empty")
	case len(a.ID) > 64:
		return errors.New("id is longer than 64 characters")
	case a.Key == "":
		return errors.New("key is empty")
	case strings.ContainsAny(a.Key, "/?#% "):
		return errors.New("key holds a character that cannot stand in a URL path")
	case a.Secret == "":
		return errors.New("secret is empty")
	case len(a.Secret) < MinSecretLength:
		return fmt.Errorf("secret is shorter than %d characters", MinSecretLength)
	case slices.Contains(wellKnownSecrets, strings.ToLower(a.Secret)):
		return errors.New("secret is a published example; generate a random one")
	case a.MaxConnections < 0, a.MaxMessageSize < 0, a.MaxEventBytes < 0, a.ReplayMaxEvents < 0,
		a.ClientEventsPerSecond < 0, a.MaxSubscriptions < 0, a.MaxPresenceMembers < 0, a.MaxUserInfoBytes < 0, a.MaxUserIDLength < 0:
		return errors.New("a limit is negative")
	case a.ActivityTimeout < 0, a.PingInterval < 0, a.ReplayWindow < 0, a.SubscribeTimeout < 0:
		return errors.New("a duration is negative")
	}
	switch a.AcceptClientEventsFrom {
	case "", ClientEventsFromAll, ClientEventsFromMembers, ClientEventsFromNone:
	default:
		return fmt.Errorf("accept_client_events_from %q: want all, members or none", a.AcceptClientEventsFrom)
	}
	for _, w := range a.Webhooks {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("webhook url %q is not an http(s) URL", w.URL)
		}
	}
	return nil
}

// appsFile is the JSON schema of HERALD_APPS_FILE.
type appsFile struct {
	Apps []App `json:"apps"`
}

// ReadAppsFile reads apps from a JSON file: {"apps":[{...}]}. Unknown fields
// are refused so that a misspelt limit is not silently ignored.
func ReadAppsFile(path string) ([]App, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading apps file: %w", err)
	}
	defer f.Close()
	return decodeApps(f, path)
}

func decodeApps(r io.Reader, name string) ([]App, error) {
	var raw struct {
		Apps []json.RawMessage `json:"apps"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("apps file %s: %w", name, err)
	}
	if len(raw.Apps) == 0 {
		return nil, fmt.Errorf("apps file %s: no apps", name)
	}
	apps := make([]App, len(raw.Apps))
	for i, b := range raw.Apps {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&apps[i]); err != nil {
			return nil, fmt.Errorf("apps file %s: app %d: %w", name, i, err)
		}
		// An explicit 0 turns client events off rather than meaning the
		// default, which an absent field means.
		var rate struct {
			PerSecond *int `json:"client_events_per_second"`
		}
		if err := json.Unmarshal(b, &rate); err == nil && rate.PerSecond != nil && *rate.PerSecond == 0 {
			if err := apps[i].clientEventsOff("client_events_per_second is 0"); err != nil {
				return nil, fmt.Errorf("apps file %s: app %d (%q): %w", name, i, apps[i].ID, err)
			}
		}
	}
	return apps, nil
}

// clientEventsOff turns client events off because of why (a rate of 0),
// unless the switch says otherwise.
func (a *App) clientEventsOff(why string) error {
	switch a.AcceptClientEventsFrom {
	case "", ClientEventsFromNone:
		a.AcceptClientEventsFrom = ClientEventsFromNone
		return nil
	}
	return fmt.Errorf("%s (no client events) but accept_client_events_from is %q", why, a.AcceptClientEventsFrom)
}

// Generate makes an app with a random id, key and secret.
func Generate() App {
	return App{ID: randomString(6, "0123456789"), Key: randomString(20, lowerAlnum), Secret: randomString(32, lowerAlnum)}
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // cannot happen on Linux
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
