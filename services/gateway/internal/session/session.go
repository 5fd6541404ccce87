// Package session speaks the Pusher protocol with one client: it reads the
// client's frames, answers pings, checks and makes subscriptions, relays
// client events, and leaves every channel when the connection ends.
//
// A session's state (its channels, its rate limit, its bad-frame count) is
// touched only by the goroutine that runs Run; a stream subscription's
// goroutine (replay.go) touches only that subscription. Frames reach the
// client only through the connection's writer.
package session

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/services/gateway/internal/globalstate"
	"github.com/herald-ws/herald/services/gateway/internal/hub"
	"github.com/herald-ws/herald/services/gateway/internal/metrics"
	"github.com/herald-ws/herald/services/gateway/internal/ratelimit"
	"github.com/herald-ws/herald/services/gateway/internal/ws"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/herald-ws/herald/shared/webhooks"
)

// The policy for clients that send bad frames.
//
// A malformed frame (not JSON, no event, wrong types, an unknown pusher:
// event) gets pusher:error 4200 and is ignored; an oversized frame (over the
// app's MaxMessageSize) gets pusher:error 4302 and is dropped. Either way the
// connection stays usable. A client may send BadFrameBudget such frames in
// BadFrameWindow; the next one closes it, with 4200 after a malformed frame
// (pusher-js reconnects, as from a glitch) or 4302 after an oversized one
// (pusher-js gives up: it would only send it again). A frame over HardCap is
// not read to its end: the connection is closed with 4302 at once.
const (
	BadFrameBudget = 10
	BadFrameWindow = time.Minute

	// CodeMalformed and CodeTooLarge are the pusher:error codes of bad frames.
	CodeMalformed = protocol.CodeGenericReconnect
	CodeTooLarge  = protocol.CodeMessageTooLarge
)

// Floods. Besides client events (the app's client_events_per_second),
// every other frame a client sends (pings, subscribes, unsubscribes,
// sign-ins) takes a token from a bucket of MessagesPerSecond, with bursts of
// twice the app's max_subscriptions so that a page subscribing to all its
// channels at once passes. A frame over the rate is dropped with
// pusher:error 4301 and counts as a bad frame: a client that keeps flooding
// is closed with 4301 (pusher-js does not reconnect).
const MessagesPerSecond = 100

// HardCap is the size past which a frame closes the connection:
// 4 × the app's limit, at least 64 KiB.
func HardCap(limit int) int { return max(4*limit, 64<<10) }

// Subscription error types and statuses, as pusher-js reports them.
const (
	errAuth           = "AuthError"
	errLimit          = "LimitReached"
	errInvalidChannel = "InvalidChannel"
	errServer         = "ServerError"
)

// Config is what a session needs.
type Config struct {
	App      *appconf.App
	SocketID string
	Conn     *ws.Conn
	Hub      *hub.Hub
	State    *globalstate.Client // presence.go
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	Replay   Replay    // replay.go
	Users    Users     // signin.go; may be nil
	Webhooks *Webhooks // webhooks.go; may be nil
	Trace    Trace
	// Ended, if not nil, is called at the end of Run, once the session
	// left its channels.
	Ended func()
}

// Trace is what a session logs of its traffic at debug level: each
// subscription, unsubscription, refusal and client event, with names and
// sizes. Debug is decided once per gateway from the logger's level, so that a
// gateway at info level pays one branch per frame and formats nothing.
type Trace struct {
	Debug bool
	// Payloads adds the data of client events (HERALD_LOG_PAYLOADS).
	Payloads bool
}

// Session is one client's protocol state.
type Session struct {
	app     *appconf.App
	id      string
	conn    *ws.Conn
	hub     *hub.Hub
	state   *globalstate.Client
	metrics *metrics.Metrics
	baseLog *slog.Logger // without the session's attributes: see logger

	channels map[string]*subscription
	limiter  ratelimit.Bucket
	messages ratelimit.Bucket // frames other than client events
	// engaged: the connection holds a channel or is signed in; the idle
	// timer closes it when it stays unengaged for the app's
	// SubscribeTimeout. Written by Run's goroutine, read by the timer's.
	engaged   atomic.Bool
	idleTimer *time.Timer
	badStart  time.Time
	badCount  int

	replay Replay
	// history is held by the stream subscription that has a page of
	// history in memory (replay.go): one page per connection at a time.
	history chan struct{}

	user  string // signed-in user id (signin.go)
	users Users

	hooks   *Webhooks     // webhooks.go
	hookSeq atomic.Uint64 // numbers this connection's webhook events

	trace Trace
	ended func()
}

type subscription struct {
	userID string  // presence channels
	stream *stream // positions, resume, rewind or cache channel (replay.go)
	gate   *gate   // presence channels without a stream (presence.go)
}

// New returns the session of a connection; Run serves it.
func New(cfg Config) *Session {
	return &Session{
		app:      cfg.App,
		id:       cfg.SocketID,
		conn:     cfg.Conn,
		hub:      cfg.Hub,
		state:    cfg.State,
		metrics:  cfg.Metrics,
		baseLog:  cfg.Logger,
		channels: map[string]*subscription{},
		limiter:  ratelimit.New(cfg.App.ClientEventsPerSecond),
		messages: ratelimit.NewBurst(MessagesPerSecond, max(MessagesPerSecond, 2*cfg.App.MaxSubscriptions)),
		replay:   cfg.Replay,
		history:  make(chan struct{}, 1),
		users:    cfg.Users,
		hooks:    cfg.Webhooks,
		trace:    cfg.Trace,
		ended:    cfg.Ended,
	}
}

// logger is the session's logger, with its app and socket id. It is made
// when a line is logged, which few sessions do, rather than held by each.
func (s *Session) logger() *slog.Logger {
	return s.baseLog.With("app_id", s.app.ID, "socket_id", s.id)
}

// SocketID is the client's socket_id.
func (s *Session) SocketID() string { return s.id }

// Send queues a frame for the client; it never blocks.
func (s *Session) Send(frame []byte) bool { return s.conn.Send(frame) }

// Close sends pusher:error and closes the connection with code.
func (s *Session) Close(code int, message string) { s.conn.Close(code, message) }

// Abort drops the connection at once.
func (s *Session) Abort() { s.conn.Abort() }

// Done is closed when the connection is closed.
func (s *Session) Done() <-chan struct{} { return s.conn.Done() }

// Run greets the client and handles its frames until the connection ends,
// then leaves every channel. While it waits for the client, its goroutine's
// stack holds only this frame above the reader's (see ws.Conn.NextMessage):
// the rest is in start, read and end.
func (s *Session) Run() {
	s.start()
	for s.read(s.conn.NextMessage()) {
	}
	s.end()
}

// start greets the client and starts the idle timer.
func (s *Session) start() {
	s.Send(protocol.ConnectionEstablished(s.id, int(s.app.ActivityTimeout.D()/time.Second)))
	s.idleTimer = time.AfterFunc(s.app.SubscribeTimeout.D(), s.closeIdle)
}

// end leaves every channel once nothing more will be read.
func (s *Session) end() {
	s.idleTimer.Stop()
	s.leaveAll()
	s.conn.ReaderDone()
	if s.ended != nil {
		s.ended()
	}
}

// read reads and handles one message; it reports false when the connection
// ended.
func (s *Session) read(next ws.Next) bool {
	limit := s.app.MaxMessageSize
	buf, err := s.conn.ReadMessage(next, limit, HardCap(limit))
	switch {
	case errors.Is(err, ws.ErrTooLarge):
		s.bad(CodeTooLarge, fmt.Sprintf("Message is larger than %d bytes and was dropped", limit))
		return true
	case errors.Is(err, ws.ErrBinary):
		s.conn.CloseWithCode(ws.CloseUnsupportedData, "Binary messages are not part of the Pusher protocol")
		return true
	case errors.Is(err, ws.ErrInvalidUTF8):
		s.conn.CloseWithCode(ws.CloseInvalidPayload, "Text message is not valid UTF-8")
		return true
	case errors.Is(err, ws.ErrOverHardCap):
		// Reading goes on (and discards) until the client answers the
		// close or the writer hangs up.
		s.conn.Close(CodeTooLarge, fmt.Sprintf("Message is larger than %d bytes", limit))
		return true
	case err != nil:
		return false
	}
	if !s.conn.Closing() {
		s.handle(buf.Bytes())
		s.checkEngaged()
	}
	s.conn.Release(buf)
	return true
}

// checkEngaged follows whether the connection holds a channel or a sign-in,
// and starts the idle timer again when it stops doing so.
func (s *Session) checkEngaged() {
	now := len(s.channels) > 0 || s.user != ""
	if now == s.engaged.Load() {
		return
	}
	s.engaged.Store(now)
	if !now {
		s.idleTimer.Reset(s.app.SubscribeTimeout.D())
	}
}

// closeIdle closes a connection that had no channel and no sign-in for the
// app's SubscribeTimeout, with 4202 (pusher-js reconnects at once: a page
// that subscribes later still works).
func (s *Session) closeIdle() {
	if !s.engaged.Load() {
		s.conn.Close(protocol.CodeClosedAfterIdle,
			fmt.Sprintf("No channel subscribed within %s", s.app.SubscribeTimeout.D()))
	}
}

// handle acts on one frame from the client.
func (s *Session) handle(b []byte) {
	f, err := protocol.DecodeFrame(b)
	if err != nil {
		s.bad(CodeMalformed, "Invalid message: "+strings.TrimPrefix(err.Error(), "protocol: "))
		return
	}
	if strings.HasPrefix(f.Event, "pusher:") && !s.messages.Allow(time.Now()) {
		s.bad(protocol.CodeClientEventRateLimit,
			fmt.Sprintf("%s was dropped: over the rate limit of %d messages per second", f.Event, MessagesPerSecond))
		return
	}
	switch {
	case f.Event == protocol.EventPing:
		s.Send(protocol.Pong)
	case f.Event == protocol.EventPong:
		// Activity was recorded by the reader.
	case f.Event == protocol.EventSubscribe:
		s.subscribe(f)
	case f.Event == protocol.EventUnsubscribe:
		s.unsubscribe(f)
	case f.Event == protocol.EventSignin:
		s.signin(f)
	case strings.HasPrefix(f.Event, "pusher:"), strings.HasPrefix(f.Event, "pusher_internal:"):
		s.bad(CodeMalformed, fmt.Sprintf("Unknown event %q", f.Event))
	default:
		s.clientEvent(f)
	}
}

// bad answers a malformed or oversized frame, and closes a client that
// keeps sending them (see BadFrameBudget).
func (s *Session) bad(code int, message string) {
	now := time.Now()
	if now.Sub(s.badStart) > BadFrameWindow {
		s.badStart, s.badCount = now, 0
	}
	s.badCount++
	if s.badCount > BadFrameBudget {
		s.conn.Close(code, "Too many invalid messages; last: "+message)
		return
	}
	s.Send(protocol.ErrorFrame(code, message))
}

func succeeded(channel string, data []byte) []byte {
	return protocol.EventFrame(protocol.EventSubscriptionSucceeded, channel, string(data), nil)
}

var emptyObject = []byte("{}")

func (s *Session) subscribe(f protocol.Frame) {
	var d protocol.SubscribeData
	if err := protocol.DecodeData(f.Data, &d); err != nil {
		s.bad(CodeMalformed, "Invalid pusher:subscribe: "+strings.TrimPrefix(err.Error(), "protocol: "))
		return
	}
	ch := d.Channel
	if err := protocol.ValidateChannel(ch); err != nil {
		s.refuseSubscription(ch, errInvalidChannel, err.Error(), 400)
		return
	}
	kind := protocol.ChannelKind(ch)
	switch {
	case kind == protocol.ServerToUser && !s.mayJoinUserChannel(ch):
		s.refuseSubscription(ch, errAuth, "Sign in before subscribing to a server-to-user channel", 401)
		return
	case kind.NeedsAuth() && !signing.VerifyChannelAuth(s.app.Key, s.app.Secret, s.id, ch, d.ChannelData, d.Auth):
		s.refuseSubscription(ch, errAuth, "Invalid signature for channel "+ch, 401)
		return
	}
	if _, ok := s.channels[ch]; ok {
		s.confirm(ch)
		return
	}
	if len(s.channels) >= s.app.MaxSubscriptions {
		s.Send(protocol.SubscriptionError(ch, errLimit,
			fmt.Sprintf("A connection may be subscribed to at most %d channels", s.app.MaxSubscriptions), 403))
		return
	}
	sub := &subscription{}
	r := s.newStream(ch, &d) // nil for a plain subscription
	var err error
	if kind == protocol.Presence {
		sub.userID, sub.gate, err = s.joinPresence(ch, d.ChannelData, r)
	} else {
		err = s.joinChannel(ch, r)
	}
	sub.stream = startStream(r, err)
	switch {
	case err != nil && s.presenceError(ch, err):
	case err != nil:
		s.logger().Warn("subscribe failed", "channel", ch, "err", err)
		s.Send(protocol.SubscriptionError(ch, errServer, "The server could not subscribe to the channel", 503))
	default:
		s.channels[ch] = sub
		s.metrics.Subscriptions.Inc()
		if s.trace.Debug {
			s.logger().Debug("subscribed", "channel", ch, "resume", d.Resume != "", "channels", len(s.channels))
		}
	}
}

// refuseSubscription answers pusher:subscription_error, and logs why at
// debug level: a client that keeps failing to subscribe shows in the log.
func (s *Session) refuseSubscription(ch, errType, message string, status int) {
	if s.trace.Debug {
		s.logger().Debug("subscription refused", "channel", ch, "status", status, "reason", message)
	}
	s.Send(protocol.SubscriptionError(ch, errType, message, status))
}

func (s *Session) unsubscribe(f protocol.Frame) {
	var d struct {
		Channel string `json:"channel"`
	}
	if err := protocol.DecodeData(f.Data, &d); err != nil {
		s.bad(CodeMalformed, "Invalid pusher:unsubscribe: "+strings.TrimPrefix(err.Error(), "protocol: "))
		return
	}
	if _, ok := s.channels[d.Channel]; ok {
		s.leave(d.Channel)
		if s.trace.Debug {
			s.logger().Debug("unsubscribed", "channel", d.Channel, "channels", len(s.channels))
		}
	}
}

func (s *Session) leave(ch string) {
	sub := s.channels[ch]
	if sub != nil && sub.stream != nil {
		sub.stream.stop()
	}
	delete(s.channels, ch)
	s.metrics.Subscriptions.Dec()
	s.hub.Unsubscribe(s.app.ID, ch, sub.hubKey(s))
	s.state.Leave(s.app.ID, ch, s.id)
}

func (s *Session) leaveAll() {
	for ch := range s.channels {
		s.leave(ch)
	}
}

// clientEvent relays a client-* event to the channel's other subscribers on
// every gateway, or tells the sender why it was refused (code null, as
// Pusher does, or 4301 over the rate).
func (s *Session) clientEvent(f protocol.Frame) {
	refuseCode := func(code int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if s.trace.Debug {
			s.logger().Debug("client event refused", "channel", f.Channel, "event", f.Event, "reason", msg)
		}
		s.Send(protocol.ErrorFrame(code, msg))
	}
	refuse := func(format string, args ...any) { refuseCode(0, format, args...) }
	ch := f.Channel
	sub, subscribed := s.channels[ch]
	switch {
	case !strings.HasPrefix(f.Event, "client-"):
		refuse("Event %q was not sent: client event names must start with client-", f.Event)
	case s.app.ClientEventsOff():
		// Reverb's code and words for accept_client_events_from "none".
		refuseCode(protocol.CodeClientEventRateLimit, "The app does not have client messaging enabled.")
	case protocol.ValidateEventName(f.Event) != nil:
		refuse("Event was not sent: %v", protocol.ValidateEventName(f.Event))
	case ch == "":
		refuse("Client event %q was not sent: it names no channel", f.Event)
	case !subscribed:
		refuse("Client event %q was not sent: not subscribed to channel %s", f.Event, ch)
	case protocol.ChannelKind(ch) == protocol.PrivateEncrypted:
		refuse("Client event %q was not sent: client events are not allowed on encrypted channels", f.Event)
	case protocol.ChannelKind(ch) != protocol.Private && protocol.ChannelKind(ch) != protocol.Presence:
		refuse("Client event %q was not sent: client events are only allowed on private and presence channels", f.Event)
	case !s.limiter.Allow(time.Now()):
		refuseCode(protocol.CodeClientEventRateLimit,
			"Client event %q was not sent: over the rate limit of %d per second", f.Event, s.app.ClientEventsPerSecond)
	default:
		ev := events.ClientEvent{AppID: s.app.ID, Channel: ch, Name: f.Event, Data: f.Data, SocketID: s.id, UserID: sub.userID}
		if err := s.hub.PublishClientEvent(ev); err != nil {
			s.logger().Warn("client event not relayed", "channel", ch, "err", err)
			return
		}
		s.metrics.ClientEvents.Inc()
		if s.trace.Debug {
			s.traceClientEvent(ch, f)
		}
		s.webhook(webhooks.Event{Name: webhooks.ClientEvent, Channel: ch, Event: f.Event,
			Data: clientEventData(f.Data), SocketID: s.id, UserID: sub.userID})
	}
}

// traceClientEvent logs a relayed client event: names and size, and the data
// only when payloads were asked for.
func (s *Session) traceClientEvent(ch string, f protocol.Frame) {
	attrs := []any{"channel", ch, "event", f.Event, "bytes", len(f.Data)}
	if s.trace.Payloads {
		attrs = append(attrs, "data", string(f.Data))
	}
	s.logger().Debug("client event", attrs...)
}
