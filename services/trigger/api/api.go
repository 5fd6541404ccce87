// Package api is the trigger HTTP API: Pusher's REST API for publishing
// events (POST /apps/{id}/events and /batch_events), the channel queries, and
// a health check. Events are stored in the app's JetStream events stream
// before the request is answered.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/herald-ws/herald/services/trigger/internal/publish"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/process"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure the API.
type Options struct {
	Apps *appconf.Registry
	// NC is the NATS connection; the caller owns it (drains and closes it).
	NC     *nats.Conn
	Logger *slog.Logger
	// Metrics receives the herald_trigger_* collectors; nil keeps them
	// unregistered.
	Metrics prometheus.Registerer
	// PathPrefix is REVERB_SERVER_PATH: routes are {PathPrefix}/apps/{id}/….
	PathPrefix string
	Stream     events.StreamOptions
	// PublishRetryFor bounds how long a publish keeps trying through a
	// NATS reconnect or a stream leader election before answering 503
	// (HERALD_PUBLISH_RETRY_FOR); 0 is publish.DefaultRetryFor, negative
	// means no retry.
	PublishRetryFor time.Duration
	// Now is the clock that signatures are checked against; nil is time.Now.
	Now func() time.Time
}

// API serves the trigger HTTP API.
type API struct {
	apps    *appconf.Registry
	nc      *nats.Conn
	log     *slog.Logger
	debug   bool // log each stored event and refused request (decided once)
	prefix  string
	now     func() time.Time
	pub     *publish.Publisher
	metrics *metrics
	state   *presence.Reader // channels.go
}

// ensureConcurrency bounds stream creations in flight at start.
const ensureConcurrency = 8

// New builds the API and ensures the events stream of every configured app.
func New(ctx context.Context, opt Options) (*API, error) {
	if opt.Apps == nil {
		return nil, errors.New("trigger api: no app registry")
	}
	if opt.NC == nil {
		return nil, errors.New("trigger api: no NATS connection")
	}
	a := &API{apps: opt.Apps, nc: opt.NC, log: opt.Logger, prefix: process.NormalizePath(opt.PathPrefix), now: opt.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.debug = a.log.Enabled(ctx, slog.LevelDebug)
	var err error
	if a.metrics, err = newMetrics(opt.Metrics); err != nil {
		return nil, fmt.Errorf("trigger api: %w", err)
	}
	if a.pub, err = publish.New(opt.NC, opt.Stream, a.log,
		publish.Options{RetryFor: opt.PublishRetryFor, Retried: a.metrics.retries.Inc}); err != nil {
		return nil, fmt.Errorf("trigger api: %w", err)
	}
	if err := a.ensureStreams(ctx); err != nil {
		return nil, fmt.Errorf("trigger api: %w", err)
	}
	if a.state, err = presence.NewReader(ctx, a.pub.JetStream(), presence.Options{Replicas: opt.Stream.Replicas}); err != nil {
		return nil, fmt.Errorf("trigger api: %w", err)
	}
	return a, nil
}

// ensureStreams creates or updates every app's stream, a few at a time:
// at R3 each one is a cluster-wide proposal.
func (a *API) ensureStreams(ctx context.Context) error {
	apps := a.apps.All()
	errs := make([]error, len(apps))
	sem := make(chan struct{}, ensureConcurrency)
	var wg sync.WaitGroup
	for i, app := range apps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = a.pub.Ensure(ctx, app)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Handler serves {PathPrefix}/apps/… and GET /up (also {PathPrefix}/up).
func (a *API) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

// Route serves the publish routes, {PathPrefix}/apps/{id}/events and
// …/batch_events, and hands any other request to next, whose routing
// sends the API's other paths to Handler. Nearly every request of the API
// is a publish, and a mux's pattern matching in front of the API's own
// routing was a measurable part of its cost.
func (a *API) Route(next http.Handler) http.Handler {
	base := a.prefix + "/apps/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath == "" && isPublishPath(r.URL.Path, base) {
			a.serveHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isPublishPath reports whether p is base + {id}/events or
// base + {id}/batch_events, for a clean id.
func isPublishPath(p, base string) bool {
	rest, ok := strings.CutPrefix(p, base)
	if !ok {
		return false
	}
	id, route, ok := strings.Cut(rest, "/")
	return ok && id != "" && id != "." && id != ".." && (route == "events" || route == "batch_events")
}

// Route names, as the requests_total metric labels them.
const (
	routeEvents       = "events"
	routeBatch        = "batch_events"
	routeChannels     = "channels"
	routeChannel      = "channel"
	routeChannelUsers = "channel_users"
	routeTerminate    = "terminate_connections"
	routeUp           = "up"
	routeUnknown      = "unknown"
)

// match is a routed request: which route, the method it takes, and the
// path parameters.
type match struct {
	route   string
	method  string
	appID   string
	channel string
	userID  string
}

func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	m, ok := a.match(r.URL)
	route := routeUnknown
	if ok {
		route = m.route
	}
	defer func() { a.metrics.request(route, sw.code()) }()

	switch {
	case !ok:
		writeError(sw, http.StatusNotFound, "no such route")
	case m.route == routeUp:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			sw.Header().Set("Allow", "GET, HEAD")
			writeError(sw, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		a.up(sw)
	case r.Method != m.method:
		sw.Header().Set("Allow", m.method)
		writeError(sw, http.StatusMethodNotAllowed, "method not allowed: use "+m.method)
	default:
		a.serveApp(sw, r, m)
	}
}

// match routes a URL. Path segments are split before they are unescaped,
// so that an escaped "/" in a user id stays inside its segment.
func (a *API) match(u *url.URL) (match, bool) {
	path := u.EscapedPath()
	if path == "/up" || (a.prefix != "" && path == a.prefix+"/up") {
		return match{route: routeUp, method: http.MethodGet}, true
	}
	rest, ok := strings.CutPrefix(path, a.prefix+"/apps/")
	if !ok {
		return match{}, false
	}
	// Every route has at most 4 segments: split into an array, without
	// allocating.
	var buf [4]string
	segs := buf[:0]
	for seg := range strings.SplitSeq(rest, "/") {
		if len(segs) == len(buf) {
			return match{}, false
		}
		v, err := url.PathUnescape(seg)
		if err != nil || v == "" {
			return match{}, false
		}
		segs = append(segs, v)
	}
	m := match{appID: segs[0]}
	switch {
	case len(segs) == 2 && segs[1] == "events":
		m.route, m.method = routeEvents, http.MethodPost
	case len(segs) == 2 && segs[1] == "batch_events":
		m.route, m.method = routeBatch, http.MethodPost
	case len(segs) == 2 && segs[1] == "channels":
		m.route, m.method = routeChannels, http.MethodGet
	case len(segs) == 3 && segs[1] == "channels":
		m.route, m.method, m.channel = routeChannel, http.MethodGet, segs[2]
	case len(segs) == 4 && segs[1] == "channels" && segs[3] == "users":
		m.route, m.method, m.channel = routeChannelUsers, http.MethodGet, segs[2]
	case len(segs) == 4 && segs[1] == "users" && segs[3] == "terminate_connections":
		m.route, m.method, m.userID = routeTerminate, http.MethodPost, segs[2]
	default:
		return match{}, false
	}
	return m, true
}

// up answers the health check: healthy while the NATS connection is up.
func (a *API) up(w http.ResponseWriter) {
	if !a.nc.IsConnected() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "NATS is not connected"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveApp checks the app and the request's signature, then hands the
// request to its route.
func (a *API) serveApp(w http.ResponseWriter, r *http.Request, m match) {
	app, ok := a.apps.ByID(m.appID)
	if !ok {
		if a.debug {
			a.log.Debug("request refused", "app_id", m.appID, "status", http.StatusNotFound, "reason", "unknown app")
		}
		writeError(w, http.StatusNotFound, "unknown app")
		return
	}
	body, err := readBody(w, r, bodyLimit(m.route, app))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "reading request body failed")
		return
	}
	if err := a.verify(r, body, app); err != nil {
		if a.debug {
			a.log.Debug("request refused", "app_id", app.ID, "status", http.StatusUnauthorized, "reason", err.Error())
		}
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	// Checked after the signature, so that only the app's owner learns
	// that it is disabled.
	if app.Disabled {
		writeError(w, http.StatusForbidden, "app is disabled")
		return
	}
	switch m.route {
	case routeEvents:
		a.events(w, r, app, body)
	case routeBatch:
		a.batchEvents(w, r, app, body)
	case routeChannel:
		a.channel(w, r, app, m.channel)
	case routeChannels:
		a.channels(w, r, app)
	case routeChannelUsers:
		a.channelUsers(w, r, app, m.channel)
	case routeTerminate:
		a.terminate(w, r, app, m.userID) // users.go
	}
}
