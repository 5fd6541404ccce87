// Package gateway serves Pusher protocol 7 WebSocket connections, as pusher-js
// 8 and laravel-echo 2 expect them, and delivers channel events from the apps'
// events streams and client events from other gateways through NATS.
//
// A Gateway shares nothing with other gateways but NATS: any number of them
// may serve the same apps.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/services/gateway/internal/globalstate"
	"github.com/herald-ws/herald/services/gateway/internal/hub"
	"github.com/herald-ws/herald/services/gateway/internal/metrics"
	"github.com/herald-ws/herald/services/gateway/internal/replay"
	"github.com/herald-ws/herald/services/gateway/internal/session"
	"github.com/herald-ws/herald/services/gateway/internal/ws"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Gateway. Zero values mean the defaults.
type Options struct {
	Apps *appconf.Registry
	// NC is the gateway's own NATS connection; the caller owns and closes it
	// (after Shutdown). It must not use nats.NoEcho: client events reach
	// this gateway's other subscribers through it.
	NC      *nats.Conn
	Logger  *slog.Logger
	Metrics prometheus.Registerer // may be nil
	// PathPrefix goes before /app/{key}: "" or "/ws" (REVERB_SERVER_PATH).
	PathPrefix string
	Stream     events.StreamOptions
	// WriteQueueBytes bounds each connection's send queue (default 1 MiB):
	// a client that lets more pile up is closed with 4100.
	WriteQueueBytes int
	// WriteTimeout bounds one write to a client (default 10 s).
	WriteTimeout time.Duration
	// PongTimeout is how long a pinged client has to answer (default
	// appconf.PongTimeout).
	PongTimeout time.Duration
	// ChannelLinger is how long a channel's NATS subscription outlives its
	// last local subscriber (default 5 s).
	ChannelLinger time.Duration
	// GatewayTTL is the time to live of this gateway's heartbeat
	// (HERALD_GATEWAY_TTL, default 15 s, at least 1 s): the presence service
	// removes the members and subscriptions of a gateway that died within
	// about that time.
	GatewayTTL time.Duration
	// PresenceTimeout bounds a presence subscribe's wait for the presence
	// service (HERALD_PRESENCE_TIMEOUT, default 5 s); past it the client gets
	// subscription_error 503.
	PresenceTimeout time.Duration
	// LogConnections logs one info line per connect and disconnect
	// (HERALD_LOG_CONNECTIONS); at debug level they are logged anyway.
	LogConnections bool
	// LogPayloads adds event data to the debug lines of client and
	// delivered events (HERALD_LOG_PAYLOADS). Off, only names and sizes
	// are logged.
	LogPayloads bool
}

// Shutdown closes connections in batches of this size, so that clients do not
// all reconnect elsewhere in the same instant.
const shutdownBatch = 256

// maxShutdownSpread bounds the time over which Shutdown spreads its batches.
const maxShutdownSpread = 2 * time.Second

// Gateway serves WebSocket clients.
type Gateway struct {
	opt      Options
	apps     *appconf.Registry
	log      *slog.Logger
	metrics  *metrics.Metrics
	hub      *hub.Hub
	state    *globalstate.Client // state.go
	users    *userIndex          // users.go
	replay   session.Replay
	hooks    *session.Webhooks
	upgrader websocket.Upgrader
	handler  http.Handler
	trace    session.Trace
	connLog  slog.Level // level of connect and disconnect lines; below debug: none

	id       string
	prefix   uint64
	counter  atomic.Uint64
	perApp   map[string]*atomic.Int64 // open connections by app id
	draining atomic.Bool
	started  time.Time

	statsStop, statsDone chan struct{} // stats.go

	mu       sync.Mutex
	sessions map[*session.Session]struct{}
	active   sync.WaitGroup
}

// New builds a gateway and ensures each app's events stream exists.
func New(ctx context.Context, opt Options) (*Gateway, error) {
	if opt.Apps == nil {
		return nil, errors.New("gateway: no apps")
	}
	if opt.NC == nil {
		return nil, errors.New("gateway: no NATS connection")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	option.Default(&opt.WriteQueueBytes, ws.DefaultQueueBytes)
	option.Default(&opt.WriteTimeout, ws.DefaultWriteTimeout)
	option.Default(&opt.PongTimeout, appconf.PongTimeout)
	option.Default(&opt.ChannelLinger, hub.DefaultLinger)
	opt.PathPrefix = process.NormalizePath(opt.PathPrefix)

	js, err := jetstream.New(opt.NC)
	if err != nil {
		return nil, fmt.Errorf("gateway: jetstream: %w", err)
	}
	for _, app := range opt.Apps.All() {
		if _, err := events.EnsureStream(ctx, js, app, opt.Stream); err != nil {
			return nil, fmt.Errorf("gateway: app %s: %w", app.ID, err)
		}
		if _, err := events.EnsureCacheStream(ctx, js, app, opt.Stream); err != nil {
			return nil, fmt.Errorf("gateway: app %s: %w", app.ID, err)
		}
	}
	m, err := metrics.New(opt.Metrics)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	rm, err := metrics.NewReplay(opt.Metrics)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// One page of history per connection at a time (session.Session),
	// a quarter of the send queue: a resume holds about as much as the
	// queue itself, whatever the size of the history.
	eng, err := replay.New(opt.NC, replay.Options{PageBytes: opt.WriteQueueBytes / 4, Reads: rm.ResumeReads})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	prefix, err := socketPrefix()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{
		opt:      opt,
		apps:     opt.Apps,
		log:      opt.Logger,
		metrics:  m,
		replay:   session.Replay{Engine: eng, Metrics: rm},
		prefix:   prefix,
		started:  time.Now(),
		id:       strconv.FormatUint(prefix, 10),
		perApp:   map[string]*atomic.Int64{},
		sessions: map[*session.Session]struct{}{},
		users:    newUserIndex(),
		upgrader: websocket.Upgrader{
			// Origins are checked per app after the upgrade: pusher-js
			// cannot read an HTTP 403, but it reads pusher:error 4009.
			CheckOrigin: func(*http.Request) bool { return true },
			// Clients send small frames (subscribes, client events): a
			// 256-byte read buffer of its own (a subscribe with its auth
			// fits) instead of keeping net/http's 4 KB one for the life of
			// the socket. A longer message is read past the buffer, into
			// the message's own.
			ReadBufferSize: 256,
			// Frames are written by ws.Writer, never through gorilla's
			// buffer: a pool keeps gorilla from holding one per connection.
			WriteBufferPool: &sync.Pool{},
		},
	}
	for _, app := range opt.Apps.All() {
		g.perApp[app.ID] = new(atomic.Int64)
	}
	g.upgrader.Error = func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		// A proxy that drops the Upgrade and Connection headers shows here.
		if g.trace.Debug {
			g.log.Debug("websocket upgrade refused", "status", status, "reason", reason.Error(), "remote", r.RemoteAddr,
				"upgrade", r.Header.Get("Upgrade"), "connection", r.Header.Get("Connection"))
		}
		http.Error(w, http.StatusText(status), status)
	}
	g.trace = session.Trace{Debug: opt.Logger.Enabled(ctx, slog.LevelDebug), Payloads: opt.LogPayloads}
	g.connLog = noConnLog
	switch {
	case opt.LogConnections:
		g.connLog = slog.LevelInfo
	case g.trace.Debug:
		g.connLog = slog.LevelDebug
	}
	g.hooks = &session.Webhooks{Gateway: g.id, Logger: opt.Logger}
	if g.hooks.JS, err = jetstream.New(opt.NC, jetstream.WithPublishAsyncErrHandler(g.hooks.AsyncErrHandler)); err != nil {
		return nil, fmt.Errorf("gateway: jetstream: %w", err)
	}
	g.hub = hub.New(opt.NC, hub.Options{
		Linger:      opt.ChannelLinger,
		Logger:      opt.Logger,
		NATSDropped: m.NATSSlowConsumer,
		LogPayloads: opt.LogPayloads,
		Repair:      hub.RepairOptions{Engine: eng, Recovered: rm.LiveRecovered, Unrecoverable: rm.LiveUnrecoverable},
	})
	if err := g.startUsers(ctx); err != nil {
		g.hub.Close()
		return nil, err
	}
	if err := g.startState(ctx); err != nil {
		g.stopUsers()
		g.hub.Close()
		return nil, err
	}
	g.startWatchlists()
	g.startStats()
	mux := http.NewServeMux()
	mux.Handle("GET "+opt.PathPrefix+ReplayJSPath, replayJS())
	mux.HandleFunc("GET "+opt.PathPrefix+"/app/{key}", g.serveWS)
	g.handler = mux
	return g, nil
}

// socketPrefix is the random per-boot first half of socket ids: 10 digits,
// so that socket ids are unique across gateways without coordination.
func socketPrefix() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("random socket id prefix: %w", err)
	}
	const lo, span = 1_000_000_000, 9_000_000_000
	return lo + binary.BigEndian.Uint64(b[:])%span, nil
}

// ID is this gateway's id, unique per boot. It is also the first half of
// every socket_id the gateway hands out.
func (g *Gateway) ID() string { return g.id }

// Handler serves {PathPrefix}/app/{key} and {PathPrefix}/app/_herald/replay.js;
// any other path is 404.
func (g *Gateway) Handler() http.Handler { return g.handler }

func (g *Gateway) newSocketID() string {
	return g.id + "." + strconv.FormatUint(g.counter.Add(1), 10)
}

// serveWS upgrades a client and serves it until it goes. Refusals happen after
// the upgrade, as pusher:error then a close with the same code, because
// pusher-js decides whether to reconnect from the close code.
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	app, known := g.apps.ByKey(r.PathValue("key"))
	c, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // gorilla answered with an HTTP error
	}
	wopt := ws.Options{
		QueueBytes:    g.opt.WriteQueueBytes,
		WriteTimeout:  g.opt.WriteTimeout,
		PongTimeout:   g.opt.PongTimeout,
		Sent:          g.metrics.MessagesSent,
		SlowConsumer:  g.metrics.SlowConsumerCloses,
		BytesSent:     g.metrics.BytesSent,
		BytesReceived: g.metrics.BytesReceived,
	}
	if known {
		wopt.PingInterval = app.PingInterval.D()
	}
	conn := ws.New(c, wopt)
	if perr := g.admit(app, known, r); perr != nil {
		if g.connLog != noConnLog {
			// 4001 (a key the front end was built with, not Herald's),
			// 4009 (origin), 4004 (quota) show here.
			g.log.Log(r.Context(), g.connLog, "connection refused", "key", r.PathValue("key"), "code", perr.Code,
				"reason", perr.Message, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		}
		conn.Close(perr.Code, perr.Message)
		conn.Discard()
		return
	}
	open := g.perApp[app.ID]
	sv := &served{app: app, open: open, disconnected: func() {}}
	s := session.New(session.Config{
		App:      app,
		SocketID: g.newSocketID(),
		Conn:     conn,
		Hub:      g.hub,
		State:    g.state,
		Metrics:  g.metrics,
		Logger:   g.log,
		Replay:   g.replay,
		Users:    g.users,
		Webhooks: g.hooks,
		Trace:    g.trace,
		Ended:    func() { g.ended(sv) },
	})
	sv.s = s
	if !g.track(s) {
		open.Add(-1)
		conn.Close(protocol.CodeGenericReconnect, "Server is shutting down")
		conn.Discard()
		return
	}
	if g.connLog != noConnLog {
		sv.disconnected = g.logConnection(r, app, s.SocketID())
	}
	// The session runs on a goroutine of its own so that the handler
	// returns: net/http then lets go of the request and of the buffers it
	// kept for the connection, which it would otherwise hold for the life
	// of the socket. Run is the goroutine's first frame: nothing else sits
	// on the stack of a connection waiting for its client (see
	// ws.Conn.NextMessage).
	g.metrics.ConnectionsTotal.WithLabelValues(app.ID).Inc()
	g.metrics.Connections.WithLabelValues(app.ID).Inc()
	go s.Run()
}

// served is a connection whose session runs.
type served struct {
	s            *session.Session
	app          *appconf.App
	open         *atomic.Int64 // the app's open connections
	disconnected func()
}

// ended runs when a session's Run returns.
func (g *Gateway) ended(c *served) {
	g.metrics.Connections.WithLabelValues(c.app.ID).Dec()
	c.disconnected()
	g.users.drop(c.s)
	g.untrack(c.s)
	c.open.Add(-1)
}

// noConnLog is connLog when neither HERALD_LOG_CONNECTIONS nor debug is on.
const noConnLog slog.Level = slog.LevelDebug - 1

// logConnection logs a connect now and returns what logs the disconnect.
func (g *Gateway) logConnection(r *http.Request, app *appconf.App, socketID string) func() {
	ctx, start := context.Background(), time.Now()
	g.log.Log(ctx, g.connLog, "connected", "app_id", app.ID, "socket_id", socketID,
		"remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "client", r.URL.Query().Get("client"))
	return func() {
		g.log.Log(ctx, g.connLog, "disconnected", "app_id", app.ID, "socket_id", socketID,
			"duration", time.Since(start).Round(time.Millisecond).String())
	}
}

// admit checks a new connection against its app; on success it holds one of
// the app's connection slots.
func (g *Gateway) admit(app *appconf.App, known bool, r *http.Request) *protocol.Error {
	switch {
	case !known:
		return protocol.Fatalf(protocol.CodeAppNotFound, "Application does not exist")
	case app.Disabled:
		return protocol.Fatalf(protocol.CodeAppDisabled, "Application is disabled")
	}
	q := r.URL.Query()
	if !q.Has("protocol") {
		return protocol.Fatalf(protocol.CodeNoProtocolVersion, "No protocol version supplied")
	}
	if v, err := strconv.Atoi(q.Get("protocol")); err != nil || v < 7 {
		return protocol.Fatalf(protocol.CodeUnsupportedProtocol, "Unsupported protocol version %q", q.Get("protocol"))
	}
	if !app.OriginAllowed(r.Header.Get("Origin")) {
		return protocol.Fatalf(protocol.CodeUnauthorized, "Origin not allowed")
	}
	open := g.perApp[app.ID]
	if n := open.Add(1); app.MaxConnections > 0 && n > int64(app.MaxConnections) {
		open.Add(-1)
		return protocol.Fatalf(protocol.CodeOverConnectionQuota, "Application is over its connection quota")
	}
	return nil
}

func (g *Gateway) track(s *session.Session) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining.Load() {
		return false
	}
	g.sessions[s] = struct{}{}
	g.active.Add(1)
	return true
}

func (g *Gateway) untrack(s *session.Session) {
	g.mu.Lock()
	delete(g.sessions, s)
	g.mu.Unlock()
	g.active.Done()
}

// Shutdown stops accepting connections, tells the presence service that
// this gateway is draining (its users stay members through the drain grace),
// closes every open connection with pusher:error 4200 (pusher-js reconnects
// at once, to another gateway), in batches spread over part of the time
// left, then ends its registration with the presence service and drops its
// NATS subscriptions. Connections still open at ctx's deadline are dropped;
// the error then includes ctx's.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.draining.Store(true)
	list := make([]*session.Session, 0, len(g.sessions))
	for s := range g.sessions {
		list = append(list, s)
	}
	g.mu.Unlock()
	g.publishStats() // the status page shows the drain at once
	errs := []error{g.drainState(ctx)}

	batches := (len(list) + shutdownBatch - 1) / shutdownBatch
	var pause time.Duration
	if deadline, ok := ctx.Deadline(); ok && batches > 1 {
		spread := min(time.Until(deadline)/2, maxShutdownSpread)
		pause = max(spread/time.Duration(batches), 0)
	}
	for i := 0; i < len(list); i += shutdownBatch {
		if i > 0 && pause > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
			}
		}
		for _, s := range list[i:min(i+shutdownBatch, len(list))] {
			s.Close(protocol.CodeGenericReconnect, "Server is shutting down")
		}
	}

	done := make(chan struct{})
	go func() {
		g.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
		for _, s := range list {
			s.Abort()
		}
		<-done
	}
	errs = append(errs, g.closeState(ctx))
	g.stopStats()
	g.stopUsers()
	g.hub.Close()
	return errors.Join(errs...)
}
