// Package statuspage serves Herald's live status page and its JSON: every
// gateway's figures (published on status.Subject), each app's channels,
// presence members, event rate and webhook backlog, and the events streams.
// It is served by the trigger API and by herald, behind HERALD_ADMIN_TOKEN.
package statuspage

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/status"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Path is where the page is served, after REVERB_SERVER_PATH. It is under
// /apps/ so that the proxy rule that sends the HTTP API to Herald sends
// the page too.
const Path = "/apps/_herald/status"

// MinTokenLength is the shortest admin token accepted.
const MinTokenLength = 16

// cookieName holds the token in the browser after the first visit with
// ?token=, so that the token leaves the address bar and the history.
const cookieName = "herald_admin"

// snapshotTTL bounds how often the figures are gathered, however many
// pages are open.
const snapshotTTL = time.Second

// goneAfter is when a silent gateway is shown as gone; forgetAfter when it
// leaves the page.
const (
	goneAfter   = 3 * status.Interval
	forgetAfter = 5 * time.Minute
)

//go:embed web
var webFS embed.FS

// Options configure the page.
type Options struct {
	NC   *nats.Conn
	Apps *appconf.Registry
	// Token is HERALD_ADMIN_TOKEN; empty means no page (New refuses it).
	Token      string
	PathPrefix string
	Replicas   int
	Logger     *slog.Logger
	// Payloads shows event data in the live tail (HERALD_LOG_PAYLOADS).
	Payloads bool
}

// Page gathers the figures and serves them.
type Page struct {
	opt    Options
	js     jetstream.JetStream
	state  *presence.Reader
	sub    *nats.Subscription
	static http.Handler
	web    fs.FS
	base   string

	mu       sync.Mutex
	gateways map[string]*gatewaySeen
	seqs     map[string]streamSeen // by app id
	counts   map[string]channelCount
	snap     []byte
	snapAt   time.Time

	tails atomic.Int64 // open live tails (tail.go)
}

type gatewaySeen struct {
	last, prev status.Gateway
	seen       time.Time
}

// channelsTTL bounds how often an app's channels are counted: counting
// reads the presence state's key of every occupied channel.
const channelsTTL = 10 * time.Second

type channelCount struct {
	channels, members int
	at                time.Time
}

// channelCounts returns an app's occupied channels and presence members,
// counted at most every channelsTTL.
func (p *Page) channelCounts(ctx context.Context, appID string, now time.Time) (channelCount, error) {
	p.mu.Lock()
	c, ok := p.counts[appID]
	p.mu.Unlock()
	if ok && now.Sub(c.at) < channelsTTL {
		return c, nil
	}
	chans, err := p.state.Channels(ctx, appID, "")
	if err != nil {
		return c, err
	}
	c = channelCount{channels: len(chans), at: now}
	for _, ch := range chans {
		c.members += ch.UserCount
	}
	p.mu.Lock()
	p.counts[appID] = c
	p.mu.Unlock()
	return c, nil
}

type streamSeen struct {
	lastSeq uint64
	at      time.Time
	rate    float64
}

// New subscribes to the gateways' figures. Close ends it.
func New(ctx context.Context, opt Options) (*Page, error) {
	if len(opt.Token) < MinTokenLength {
		return nil, fmt.Errorf("HERALD_ADMIN_TOKEN is shorter than %d characters", MinTokenLength)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(opt.NC)
	if err != nil {
		return nil, fmt.Errorf("status page: %w", err)
	}
	st, err := presence.NewReader(ctx, js, presence.Options{Replicas: opt.Replicas})
	if err != nil {
		return nil, fmt.Errorf("status page: %w", err)
	}
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	p := &Page{
		opt: opt, js: js, state: st,
		base:     strings.TrimRight(opt.PathPrefix, "/") + Path,
		gateways: map[string]*gatewaySeen{},
		seqs:     map[string]streamSeen{},
		counts:   map[string]channelCount{},
		web:      sub,
	}
	p.static = http.StripPrefix(p.base+"/", http.FileServerFS(sub))
	if p.sub, err = opt.NC.Subscribe(status.Subject, p.receive); err != nil {
		return nil, fmt.Errorf("status page: subscribing to %s: %w", status.Subject, err)
	}
	return p, nil
}

// Close stops listening to the gateways.
func (p *Page) Close() { _ = p.sub.Unsubscribe() }

// Base is the page's path.
func (p *Page) Base() string { return p.base }

func (p *Page) receive(m *nats.Msg) {
	var g status.Gateway
	if err := json.Unmarshal(m.Data, &g); err != nil || g.ID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.gateways[g.ID]
	if s == nil {
		s = &gatewaySeen{prev: g}
		p.gateways[g.ID] = s
	} else {
		s.prev = s.last
	}
	s.last, s.seen = g, time.Now()
}

// Handler serves the page at Base, its assets under Base/, and its figures
// at Base/data.json. Without the token: 401.
func (p *Page) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			process.WriteError(w, http.StatusMethodNotAllowed, "GET only")
			return
		}
		if t := r.URL.Query().Get("token"); t != "" && p.tokenOK(t) && r.URL.Path == p.base {
			// Keep the token in a cookie for this path and drop it
			// from the address bar.
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: t, Path: p.base, HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
			http.Redirect(w, r, p.base, http.StatusSeeOther)
			return
		}
		if !p.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
			process.WriteError(w, http.StatusUnauthorized, "admin token required: open "+p.base+"?token=… (HERALD_ADMIN_TOKEN)")
			return
		}
		switch r.URL.Path {
		case p.base:
			http.ServeFileFS(w, r, p.web, "index.html")
		case p.base + "/", p.base + "/index.html":
			http.Redirect(w, r, p.base, http.StatusSeeOther)
		case p.base + "/data.json":
			p.serveData(w, r)
		case p.base + "/tail":
			p.serveTail(w, r)
		default:
			p.static.ServeHTTP(w, r)
		}
	})
}

func (p *Page) tokenOK(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(p.opt.Token)) == 1
}

func (p *Page) authorized(r *http.Request) bool {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && p.tokenOK(t) {
		return true
	}
	c, err := r.Cookie(cookieName)
	return err == nil && p.tokenOK(c.Value)
}

func (p *Page) serveData(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	fresh := p.snap != nil && time.Since(p.snapAt) < snapshotTTL
	b := p.snap
	p.mu.Unlock()
	if !fresh {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		s := p.Snapshot(ctx)
		cancel()
		var err error
		if b, err = json.Marshal(s); err != nil {
			process.WriteError(w, http.StatusInternalServerError, err.Error())
			return
		}
		p.mu.Lock()
		p.snap, p.snapAt = b, time.Now()
		p.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// Snapshot is what the page shows.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Gateways []Gateway `json:"gateways"`
	Apps     []App     `json:"apps"`
	Streams  []Stream  `json:"streams"`
	Errors   []string  `json:"errors,omitempty"`
}

// Gateway is one gateway's latest figures and its rates over the last
// interval.
type Gateway struct {
	status.Gateway
	Gone              bool    `json:"gone"`
	SeenSecondsAgo    float64 `json:"seen_seconds_ago"`
	MessagesPerSecond float64 `json:"messages_per_second"`
	BytesOutPerSecond float64 `json:"bytes_out_per_second"`
	BytesInPerSecond  float64 `json:"bytes_in_per_second"`
	ClientEventsPerS  float64 `json:"client_events_per_second"`
}

// App is one app across every gateway.
type App struct {
	ID              string  `json:"id"`
	Connections     int64   `json:"connections"`
	Channels        int     `json:"channels"`
	PresenceMembers int     `json:"presence_members"`
	EventsPerSecond float64 `json:"events_per_second"`
	WebhookBacklog  uint64  `json:"webhook_backlog"`
	WebhookRetries  uint64  `json:"webhook_retries"`
	Disabled        bool    `json:"disabled,omitempty"`
}

// Stream is one JetStream stream's state.
type Stream struct {
	Name     string `json:"name"`
	App      string `json:"app,omitempty"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	Replicas int    `json:"replicas"`
	Leader   string `json:"leader"`
	Lagging  int    `json:"lagging_replicas"`
}

// Snapshot gathers the figures now.
func (p *Page) Snapshot(ctx context.Context) Snapshot {
	now := time.Now()
	s := Snapshot{Time: now}
	apps := map[string]*App{}
	for _, a := range p.opt.Apps.All() {
		apps[a.ID] = &App{ID: a.ID, Disabled: a.Disabled}
	}

	p.mu.Lock()
	for id, g := range p.gateways {
		age := now.Sub(g.seen)
		if age > forgetAfter {
			delete(p.gateways, id)
			continue
		}
		out := Gateway{Gateway: g.last, Gone: age > goneAfter, SeenSecondsAgo: age.Seconds()}
		if dt := g.last.Time.Sub(g.prev.Time).Seconds(); dt > 0 && !out.Gone {
			rate := func(a, b uint64) float64 {
				if a < b {
					return 0
				}
				return float64(a-b) / dt
			}
			out.MessagesPerSecond = rate(g.last.MessagesSent, g.prev.MessagesSent)
			out.BytesOutPerSecond = rate(g.last.BytesSent, g.prev.BytesSent)
			out.BytesInPerSecond = rate(g.last.BytesReceived, g.prev.BytesReceived)
			out.ClientEventsPerS = rate(g.last.ClientEvents, g.prev.ClientEvents)
		}
		if !out.Gone {
			for app, n := range g.last.Apps {
				if a := apps[app]; a != nil {
					a.Connections += n
				}
			}
		}
		s.Gateways = append(s.Gateways, out)
	}
	p.mu.Unlock()
	slices.SortFunc(s.Gateways, func(a, b Gateway) int { return strings.Compare(a.ID, b.ID) })

	for id, a := range apps {
		c, err := p.channelCounts(ctx, id, now)
		if err != nil {
			s.Errors = append(s.Errors, err.Error())
			continue
		}
		a.Channels, a.PresenceMembers = c.channels, c.members
	}
	s.Streams, s.Errors = p.streams(ctx, apps, now, s.Errors)
	s.Errors = p.webhooks(ctx, apps, s.Errors)
	for _, a := range apps {
		s.Apps = append(s.Apps, *a)
	}
	slices.SortFunc(s.Apps, func(a, b App) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// streams reads every app's events stream, and the event rate from how far
// its last sequence moved since the previous look.
func (p *Page) streams(ctx context.Context, apps map[string]*App, now time.Time, errs []string) ([]Stream, []string) {
	var out []Stream
	for id, a := range apps {
		name := names.EventsStream(id)
		st, err := p.js.Stream(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Sprintf("stream %s: %v", name, err))
			continue
		}
		info := st.CachedInfo()
		if fresh, err := st.Info(ctx); err == nil {
			info = fresh
		}
		row := Stream{Name: name, App: id, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			Replicas: info.Config.Replicas, Leader: "this server"}
		if c := info.Cluster; c != nil && c.Leader != "" {
			row.Leader = c.Leader
			for _, r := range c.Replicas {
				if r != nil && (!r.Current || r.Offline) {
					row.Lagging++
				}
			}
		}
		out = append(out, row)
		p.mu.Lock()
		prev, seen := p.seqs[id]
		cur := streamSeen{lastSeq: info.State.LastSeq, at: now, rate: prev.rate}
		if dt := now.Sub(prev.at).Seconds(); seen && dt >= 0.5 && cur.lastSeq >= prev.lastSeq {
			cur.rate = float64(cur.lastSeq-prev.lastSeq) / dt
		} else if seen && dt < 0.5 {
			cur = prev // too soon to tell: keep the last figure
		}
		p.seqs[id] = cur
		a.EventsPerSecond = cur.rate
		p.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Stream) int { return strings.Compare(a.Name, b.Name) })
	return out, errs
}

// webhooks adds each app's webhook backlog (batches not yet delivered) and
// retries (deliveries tried again) from the webhook consumers.
func (p *Page) webhooks(ctx context.Context, apps map[string]*App, errs []string) []string {
	st, err := p.js.Stream(ctx, names.WebhooksStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return errs // no webhooks configured yet
	}
	if err != nil {
		return append(errs, fmt.Sprintf("webhooks: %v", err))
	}
	list := st.ListConsumers(ctx)
	for c := range list.Info() {
		app := webhookApp(c.Config.FilterSubject)
		if a := apps[app]; a != nil {
			a.WebhookBacklog += c.NumPending + uint64(c.NumAckPending)
			a.WebhookRetries += uint64(c.NumRedelivered)
		}
	}
	if err := list.Err(); err != nil {
		errs = append(errs, fmt.Sprintf("webhook consumers: %v", err))
	}
	return errs
}

// webhookApp returns the app id of a names.WebhookSubject.
func webhookApp(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return ""
	}
	id, err := names.DecodeToken(parts[2])
	if err != nil {
		return ""
	}
	return id
}

// Settings are the page's settings, the same in the trigger binary and in
// herald.
type Settings struct {
	// AdminToken opens the page; empty: no page. Event data in the live
	// tail is Options.Payloads (HERALD_LOG_PAYLOADS, process.Settings).
	AdminToken string `env:"HERALD_ADMIN_TOKEN"`
}

// Check validates the settings; errors name the variable.
func (s *Settings) Check() error {
	if s.AdminToken != "" && len(s.AdminToken) < MinTokenLength {
		return fmt.Errorf("HERALD_ADMIN_TOKEN is shorter than %d characters", MinTokenLength)
	}
	return nil
}

// Mount serves the page on mux when the token is set, reading NATS through
// nc with the process settings set, and stops it when the process exits:
// the one way the trigger binary and herald mount theirs.
func (s Settings) Mount(ctx context.Context, mux *http.ServeMux, rt *process.Runtime, set *process.Settings,
	nc *nats.Conn, apps *appconf.Registry, log *slog.Logger) error {
	if s.AdminToken == "" {
		return nil
	}
	opt := Options{NC: nc, Apps: apps, Token: s.AdminToken, PathPrefix: set.Path,
		Replicas: set.StreamReplicas, Logger: log, Payloads: set.LogPayloads}
	p, err := New(ctx, opt)
	if err != nil {
		return err
	}
	rt.AtExit(p.Close)
	mux.Handle(p.Base(), p.Handler())
	mux.Handle(p.Base()+"/", p.Handler())
	opt.Logger.Info("status page", "path", p.Base())
	return nil
}
