// Package appconf holds the apps Herald serves (ids, keys, secrets, limits)
// and reads them from the environment or from a JSON apps file.
package appconf

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-ws/herald/shared/webhooks"
)

// App is one Pusher application: credentials and the limits that apply to its
// connections, events and history. Zero limits mean the defaults below.
type App struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Secret string `json:"secret"`
	// Disabled apps are refused: 4003 on the WebSocket, 403 on the HTTP API.
	Disabled bool `json:"disabled,omitempty"`

	// AllowedOrigins lists the Origin values browsers may connect from
	// ("https://shop.example"), or "*" for any. Empty means any.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// MaxConnections caps open WebSocket connections per gateway (4004
	// beyond it). 0 means no cap.
	MaxConnections int `json:"max_connections,omitempty"`
	// MaxMessageSize bounds one client frame, in bytes.
	MaxMessageSize int `json:"max_message_size,omitempty"`
	// ActivityTimeout is told to clients: they ping after this much silence.
	ActivityTimeout Duration `json:"activity_timeout,omitempty"`
	// PingInterval is how long the server waits on a silent client before it
	// pings; a client that then stays silent for PongTimeout is closed (4201).
	PingInterval Duration `json:"ping_interval,omitempty"`
	// ClientEventsPerSecond limits client-* events per connection (4301).
	// Set to 0 (in the environment, or explicitly in an apps file) it turns
	// client events off, as AcceptClientEventsFrom "none" does.
	ClientEventsPerSecond int `json:"client_events_per_second,omitempty"`
	// AcceptClientEventsFrom is Reverb's switch for client events:
	// "members" (the default) relays those of connections subscribed to the
	// channel, "none" refuses them all (4301). "all" is accepted and means
	// "members": a connection must have subscribed (and, for private and
	// presence channels, been authorized) before it may send on a channel.
	AcceptClientEventsFrom string `json:"accept_client_events_from,omitempty"`
	// MaxSubscriptions bounds the channels one connection may be subscribed
	// to at once; a subscribe beyond it gets pusher:subscription_error.
	MaxSubscriptions int `json:"max_subscriptions,omitempty"`
	// SubscribeTimeout is how long a connection may stay without a channel
	// (and not signed in) before it is closed with 4202.
	SubscribeTimeout Duration `json:"subscribe_timeout,omitempty"`

	// MaxEventBytes bounds the data of one event on the HTTP API (413).
	MaxEventBytes int `json:"max_event_bytes,omitempty"`

	// ReplayWindow and ReplayMaxEvents bound each channel's history.
	ReplayWindow    Duration `json:"replay_window,omitempty"`
	ReplayMaxEvents int      `json:"replay_max_events,omitempty"`

	// Presence limits.
	MaxPresenceMembers int `json:"max_presence_members,omitempty"`
	MaxUserInfoBytes   int `json:"max_user_info_bytes,omitempty"`
	MaxUserIDLength    int `json:"max_user_id_length,omitempty"`

	// SubscriptionCount enables pusher_internal:subscription_count.
	SubscriptionCount bool `json:"subscription_count,omitempty"`
	// Webhooks are POSTed on channel and member changes.
	Webhooks []Webhook `json:"webhooks,omitempty"`
}

// Webhook is one endpoint and the events it receives (webhooks.Endpoint).
type Webhook = webhooks.Endpoint

// Defaults is an app's limits where nothing sets them, for an app of an
// apps file as for REVERB_APP_*: those of Env's envDefault tags (as Pusher
// and Reverb use them), their one declaration.
var Defaults = sync.OnceValue(func() App {
	e, err := parseFrom[Env](map[string]string{})
	if err != nil {
		panic("appconf: Env's defaults: " + err.Error())
	}
	return e.App(App{})
})

// Values of AcceptClientEventsFrom, as Reverb names them.
const (
	ClientEventsFromAll     = "all"
	ClientEventsFromMembers = "members"
	ClientEventsFromNone    = "none"
)

// ClientEventsOff reports whether the app refuses every client event.
func (a *App) ClientEventsOff() bool { return a.AcceptClientEventsFrom == ClientEventsFromNone }

// PongTimeout is how long a pinged client has to answer before 4201.
const PongTimeout = 30 * time.Second

// withDefaults fills zero limits from Defaults.
func (a *App) withDefaults() {
	d := Defaults()
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	setDur := func(p *Duration, d Duration) {
		if *p == 0 {
			*p = d
		}
	}
	setInt(&a.MaxMessageSize, d.MaxMessageSize)
	setDur(&a.ActivityTimeout, d.ActivityTimeout)
	setDur(&a.PingInterval, d.PingInterval)
	setInt(&a.ClientEventsPerSecond, d.ClientEventsPerSecond)
	if a.AcceptClientEventsFrom == "" {
		a.AcceptClientEventsFrom = ClientEventsFromMembers
	}
	setInt(&a.MaxSubscriptions, d.MaxSubscriptions)
	setDur(&a.SubscribeTimeout, d.SubscribeTimeout)
	setInt(&a.MaxEventBytes, d.MaxEventBytes)
	setDur(&a.ReplayWindow, d.ReplayWindow)
	setInt(&a.ReplayMaxEvents, d.ReplayMaxEvents)
	setInt(&a.MaxPresenceMembers, d.MaxPresenceMembers)
	setInt(&a.MaxUserInfoBytes, d.MaxUserInfoBytes)
	setInt(&a.MaxUserIDLength, d.MaxUserIDLength)
}

// OriginAllowed reports whether a browser at origin may connect. A request
// without an Origin header (server-side clients) is always allowed.
func (a *App) OriginAllowed(origin string) bool {
	if origin == "" || len(a.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range a.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
		// "*.example.com" matches any subdomain, as Reverb allows.
		if rest, ok := strings.CutPrefix(o, "*."); ok {
			host := origin
			if i := strings.Index(host, "://"); i >= 0 {
				host = host[i+3:]
			}
			if strings.HasSuffix(strings.ToLower(host), "."+strings.ToLower(rest)) {
				return true
			}
		}
	}
	return false
}

// Duration is a time.Duration that reads from JSON as a number of seconds
// (as Reverb's config does) or as a Go duration string ("5m").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		v, err := ParseDuration(str)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want seconds or a string like \"5m\"", s)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
