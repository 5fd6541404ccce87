package appconf

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Env is the app configuration every service reads from the environment:
// one app from Reverb's REVERB_APP_* names, or many from HERALD_APPS_FILE.
// The limits here apply to the env-configured app; an apps file sets its own
// per app.
type Env struct {
	AppID     string `env:"REVERB_APP_ID"`
	AppKey    string `env:"REVERB_APP_KEY"`
	AppSecret string `env:"REVERB_APP_SECRET"`
	AppsFile  string `env:"HERALD_APPS_FILE"`

	MaxMessageSize  int      `env:"REVERB_APP_MAX_MESSAGE_SIZE" envDefault:"10000"`
	ActivityTimeout int      `env:"REVERB_APP_ACTIVITY_TIMEOUT" envDefault:"30"`
	PingInterval    int      `env:"REVERB_APP_PING_INTERVAL" envDefault:"60"`
	MaxConnections  int      `env:"REVERB_APP_MAX_CONNECTIONS" envDefault:"0"`
	AllowedOrigins  []string `env:"HERALD_ALLOWED_ORIGINS" envSeparator:","`

	// AcceptClientEventsFrom is Reverb's switch: all, members or none.
	// HERALD_CLIENT_EVENTS_PER_SECOND=0 also turns client events off.
	AcceptClientEventsFrom string        `env:"REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM"`
	ClientEventsPerSecond  int           `env:"HERALD_CLIENT_EVENTS_PER_SECOND" envDefault:"10"`
	MaxSubscriptions       int           `env:"HERALD_MAX_SUBSCRIPTIONS" envDefault:"128"`
	SubscribeTimeout       time.Duration `env:"HERALD_SUBSCRIBE_TIMEOUT" envDefault:"10m"`
	MaxEventBytes          int           `env:"HERALD_MAX_EVENT_BYTES" envDefault:"10240"`
	ReplayWindow           time.Duration `env:"HERALD_REPLAY_WINDOW" envDefault:"5m"`
	ReplayMaxEvents        int           `env:"HERALD_REPLAY_MAX_EVENTS" envDefault:"1000"`
	MaxPresenceMembers     int           `env:"HERALD_MAX_PRESENCE_MEMBERS" envDefault:"100"`
	MaxUserInfoBytes       int           `env:"HERALD_MAX_USER_INFO_BYTES" envDefault:"1024"`
	MaxUserIDLength        int           `env:"HERALD_MAX_USER_ID_LENGTH" envDefault:"128"`
	SubscriptionCount      bool          `env:"HERALD_SUBSCRIPTION_COUNT" envDefault:"false"`
	WebhookURLs            []string      `env:"HERALD_WEBHOOK_URLS" envSeparator:","`
}

// ErrNoApp means neither REVERB_APP_* nor HERALD_APPS_FILE is set.
var ErrNoApp = errors.New("no app configured: set REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET, or HERALD_APPS_FILE")

// ParseEnv reads Env from the process environment.
func ParseEnv() (Env, error) {
	e, err := Parse[Env]()
	if err != nil {
		return Env{}, fmt.Errorf("reading app settings: %w", err)
	}
	e.AcceptClientEventsFrom = strings.ToLower(strings.TrimSpace(e.AcceptClientEventsFrom))
	if e.ClientEventsPerSecond == 0 {
		probe := App{AcceptClientEventsFrom: e.AcceptClientEventsFrom}
		if err := probe.clientEventsOff("HERALD_CLIENT_EVENTS_PER_SECOND is 0"); err != nil {
			return Env{}, fmt.Errorf("%w: set REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=none, or a rate above 0", err)
		}
	}
	return e, nil
}

// HasApp reports whether any app setting is present.
func (e Env) HasApp() bool {
	return e.AppID != "" || e.AppKey != "" || e.AppSecret != "" || e.AppsFile != ""
}

// Apps returns the configured apps, or ErrNoApp.
func (e Env) Apps() ([]App, error) {
	single := e.AppID != "" || e.AppKey != "" || e.AppSecret != ""
	switch {
	case single && e.AppsFile != "":
		return nil, errors.New("both REVERB_APP_* and HERALD_APPS_FILE are set: use one")
	case e.AppsFile != "":
		return ReadAppsFile(e.AppsFile)
	case !single:
		return nil, ErrNoApp
	}
	var missing []string
	for _, s := range []struct{ name, value string }{
		{"REVERB_APP_ID", e.AppID}, {"REVERB_APP_KEY", e.AppKey}, {"REVERB_APP_SECRET", e.AppSecret},
	} {
		if s.value == "" {
			missing = append(missing, s.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("app settings incomplete: %s not set", strings.Join(missing, ", "))
	}
	return []App{e.App(App{ID: e.AppID, Key: e.AppKey, Secret: e.AppSecret})}, nil
}

// App applies the environment's limits to an app with credentials set.
func (e Env) App(a App) App {
	a.MaxMessageSize = e.MaxMessageSize
	a.ActivityTimeout = Duration(time.Duration(e.ActivityTimeout) * time.Second)
	a.PingInterval = Duration(time.Duration(e.PingInterval) * time.Second)
	a.MaxConnections = e.MaxConnections
	a.AllowedOrigins = e.AllowedOrigins
	a.ClientEventsPerSecond = e.ClientEventsPerSecond
	a.AcceptClientEventsFrom = e.AcceptClientEventsFrom
	if e.ClientEventsPerSecond == 0 {
		a.AcceptClientEventsFrom = ClientEventsFromNone // ParseEnv refused a contradiction
	}
	a.MaxSubscriptions = e.MaxSubscriptions
	a.SubscribeTimeout = Duration(e.SubscribeTimeout)
	a.MaxEventBytes = e.MaxEventBytes
	a.ReplayWindow = Duration(e.ReplayWindow)
	a.ReplayMaxEvents = e.ReplayMaxEvents
	a.MaxPresenceMembers = e.MaxPresenceMembers
	a.MaxUserInfoBytes = e.MaxUserInfoBytes
	a.MaxUserIDLength = e.MaxUserIDLength
	a.SubscriptionCount = e.SubscriptionCount
	for _, u := range e.WebhookURLs {
		if u = strings.TrimSpace(u); u != "" {
			a.Webhooks = append(a.Webhooks, Webhook{URL: u})
		}
	}
	return a
}

// Registry builds the registry from the environment.
func (e Env) Registry() (*Registry, error) {
	apps, err := e.Apps()
	if err != nil {
		return nil, err
	}
	return NewRegistry(apps)
}
