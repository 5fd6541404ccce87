// Package client is one Pusher protocol 7 subscriber, as pusher-js behaves
// on the wire: it connects, waits for connection_established, subscribes to
// one channel, answers the server's pings, pings when the line is quiet, and
// accounts every load generator event it receives.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/scripts/loadgen/internal/payload"
	"github.com/herald-ws/herald/scripts/loadgen/internal/stats"
	"github.com/herald-ws/herald/shared/protocol"
)

// Shared is what every subscriber of a run adds to. Its counters are safe
// for concurrent use.
type Shared struct {
	Latency    stats.Histogram // receive time - send time, first receipts only
	Delivered  atomic.Uint64   // first receipts of events, for the drain wait
	PingsIn    atomic.Uint64   // pusher:ping from the server, answered
	PingsOut   atomic.Uint64   // pusher:ping sent on a quiet line
	PongsIn    atomic.Uint64
	ErrorsIn   atomic.Uint64 // pusher:error frames
	OtherIn    atomic.Uint64 // frames of no concern (subscription_count, ...)
	LastRecvNs atomic.Int64  // unix nanos of the latest event receipt
}

// Options configure one subscriber.
type Options struct {
	URL          string // ws://host:port/app/{key}?protocol=7&...
	Channel      string // "" connects without subscribing
	ChannelIndex uint64
	// Auth signs a private channel subscription for a socket id; nil for
	// public channels.
	Auth func(socketID string) string
	// Extra channels are subscribed after Channel, one after the other
	// (public channels: no auth).
	Extra []string
	// Centrifugo speaks Centrifugo's protocol instead of Pusher's
	// (centrifugo.go): Token is the connection JWT, SubToken the
	// subscription JWT of a channel ("" for none).
	Centrifugo bool
	Token      string
	SubToken   func(channel string) string

	Dialer  *websocket.Dialer
	Timeout time.Duration // for connection_established and the subscription each
	Shared  *Shared
}

// Conn is a connected, subscribed client.
type Conn struct {
	ws       *websocket.Conn
	opts     Options
	SocketID string
	// ActivityTimeout is what the server announced: after that long without
	// a frame, the client pings, as pusher-js does.
	ActivityTimeout time.Duration
	ConnectTime     time.Duration // dial start to connection_established
	SubscribeTime   time.Duration // subscribe sent to subscription_succeeded

	recv     stats.Receiver // written by the reader only
	wmu      sync.Mutex     // one writer at a time
	lastSeen atomic.Int64   // unix nanos of the latest frame of any kind
	closing  atomic.Bool
	done     chan struct{}
	buf      bytes.Buffer
	// Set when Run returns.
	err error
}

// Errors of the handshake, kept apart so a report can count them by cause.
var (
	ErrDial              = errors.New("dial")
	ErrNoEstablished     = errors.New("no connection_established")
	ErrSubscriptionError = errors.New("subscription refused")
	ErrNoSubscription    = errors.New("no subscription_succeeded")
)

// Dial connects and subscribes. The returned Conn is reading nothing until
// Run is called.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	start := time.Now()
	ws, resp, err := o.Dialer.DialContext(ctx, o.URL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: %s: HTTP %d", ErrDial, o.URL, resp.StatusCode)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrDial, o.URL, err)
	}
	c := &Conn{ws: ws, opts: o, done: make(chan struct{})}
	c.lastSeen.Store(time.Now().UnixNano())
	handshake := c.handshake
	if o.Centrifugo {
		handshake = c.centrifugoHandshake
	}
	if err := handshake(start); err != nil {
		ws.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) handshake(start time.Time) error {
	c.ws.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	for c.SocketID == "" {
		f, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoEstablished, err)
		}
		if f.Event != protocol.EventConnectionEstablished {
			continue
		}
		var d struct {
			SocketID        string `json:"socket_id"`
			ActivityTimeout int    `json:"activity_timeout"`
		}
		if err := protocol.DecodeData(f.Data, &d); err != nil || d.SocketID == "" {
			return fmt.Errorf("%w: bad data %s", ErrNoEstablished, f.Data)
		}
		c.SocketID = d.SocketID
		c.ActivityTimeout = time.Duration(max(d.ActivityTimeout, 1)) * time.Second
	}
	c.ConnectTime = time.Since(start)
	if c.opts.Channel == "" {
		c.ws.SetReadDeadline(time.Time{})
		return nil
	}

	subStart := time.Now()
	for i, ch := range c.channels() {
		sub := protocol.SubscribeData{Channel: ch}
		if i == 0 && c.opts.Auth != nil {
			sub.Auth = c.opts.Auth(c.SocketID)
		}
		if err := c.subscribe(sub); err != nil {
			return err
		}
	}
	c.SubscribeTime = time.Since(subStart)
	c.ws.SetReadDeadline(time.Time{})
	return nil
}

// channels are the connection's channels: Channel, then Extra.
func (c *Conn) channels() []string {
	if c.opts.Channel == "" {
		return nil
	}
	return append([]string{c.opts.Channel}, c.opts.Extra...)
}

// subscribe sends pusher:subscribe and waits for its answer.
func (c *Conn) subscribe(sub protocol.SubscribeData) error {
	msg, _ := json.Marshal(struct {
		Event string                 `json:"event"`
		Data  protocol.SubscribeData `json:"data"`
	}{protocol.EventSubscribe, sub})
	c.ws.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	if err := c.write(msg); err != nil {
		return fmt.Errorf("%w: sending subscribe: %v", ErrNoSubscription, err)
	}
	for {
		f, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoSubscription, err)
		}
		switch {
		case f.Event == protocol.EventSubscriptionSucceeded && f.Channel == sub.Channel:
			return nil
		case f.Event == protocol.EventSubscriptionError:
			return fmt.Errorf("%w: %s", ErrSubscriptionError, f.Data)
		}
	}
}

// readFrame reads frames until one that is not an event or a ping, which it
// handles itself, and returns it decoded.
func (c *Conn) readFrame() (protocol.Frame, error) {
	for {
		b, recv, err := c.next()
		if err != nil {
			return protocol.Frame{}, err
		}
		if c.handle(b, recv) {
			continue
		}
		f, err := protocol.DecodeFrame(b)
		if err != nil {
			c.opts.Shared.OtherIn.Add(1)
			continue
		}
		return f, nil
	}
}

// next reads one message into the connection's buffer, which the next call
// reuses.
func (c *Conn) next() ([]byte, time.Time, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, time.Time{}, err
	}
	c.buf.Reset()
	if _, err := c.buf.ReadFrom(r); err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	c.lastSeen.Store(now.UnixNano())
	return c.buf.Bytes(), now, nil
}

// handle deals with the frames that need no decoding: load generator events,
// pings, pongs and errors. It reports whether b was one of them.
func (c *Conn) handle(b []byte, recv time.Time) bool {
	sh := c.opts.Shared
	if e, ok := payload.FromFrame(b); ok {
		c.record(e, recv)
		return true
	}
	switch {
	case bytes.Contains(b, []byte(`"event":"`+protocol.EventPing+`"`)):
		sh.PingsIn.Add(1)
		c.write(protocol.Pong)
		return true
	case bytes.Contains(b, []byte(`"event":"`+protocol.EventPong+`"`)):
		sh.PongsIn.Add(1)
		return true
	case bytes.Contains(b, []byte(`"event":"`+protocol.EventError+`"`)):
		sh.ErrorsIn.Add(1)
		return true
	}
	return false
}

// record accounts one load generator event.
func (c *Conn) record(e payload.Event, recv time.Time) {
	if e.Channel != c.opts.ChannelIndex {
		c.recv.Foreign()
		return
	}
	if c.recv.Record(e.Seq, e.SentAt) {
		sh := c.opts.Shared
		ns := recv.UnixNano()
		sh.Latency.Record(time.Duration(ns - e.SentAt))
		sh.Delivered.Add(1)
		stats.StoreMax(&sh.LastRecvNs, ns)
	}
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// Run reads until the connection ends and returns why; nil after Close.
// Call it once, on its own goroutine.
func (c *Conn) Run() error {
	defer close(c.done)
	for {
		b, recv, err := c.next()
		if err != nil {
			if c.closing.Load() {
				err = nil
			} else {
				c.ws.Close()
			}
			c.err = err
			return err
		}
		switch {
		case c.opts.Centrifugo:
			c.centrifugoMessage(b, recv)
		case !c.handle(b, recv):
			c.opts.Shared.OtherIn.Add(1)
		}
	}
}

// PingIfQuiet sends pusher:ping when nothing arrived for the activity
// timeout, as pusher-js does. Safe to call from any goroutine.
func (c *Conn) PingIfQuiet(now time.Time) {
	if c.ActivityTimeout == 0 {
		return // Centrifugo: the server pings
	}
	if now.UnixNano()-c.lastSeen.Load() < int64(c.ActivityTimeout) {
		return
	}
	if c.write(protocol.Ping) == nil {
		c.lastSeen.Store(now.UnixNano()) // one ping per quiet period
		c.opts.Shared.PingsOut.Add(1)
	}
}

// Close sends a normal close frame and closes the socket; Run then returns.
func (c *Conn) Close() {
	c.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.ws.Close()
}

// ChannelIndex is the index of the channel the connection subscribed to.
func (c *Conn) ChannelIndex() uint64 { return c.opts.ChannelIndex }

// Done is closed when Run has returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why Run returned: nil after Close, else the read error (a
// *websocket.CloseError carries the server's close code). Read it after Done.
func (c *Conn) Err() error { return c.err }

// Receiver is the connection's accounting; read it after Done.
func (c *Conn) Receiver() *stats.Receiver { return &c.recv }

// CloseCode is the WebSocket close code of err, or 0 when err is not a
// close frame (EOF, reset).
func CloseCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// IsEOF reports an error that just means the peer went away.
func IsEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
