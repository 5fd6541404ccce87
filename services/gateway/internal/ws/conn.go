package ws

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Read errors that leave the connection usable or not.
var (
	// ErrTooLarge: the message was over the limit and has been dropped; the
	// connection can go on.
	ErrTooLarge = errors.New("ws: message over the size limit")
	// ErrOverHardCap: the message was over the hard cap; reading stopped in
	// its middle, so the connection must be closed.
	ErrOverHardCap = errors.New("ws: message over the hard cap")
	// ErrBinary: the client sent a binary message, which the Pusher
	// protocol does not have; the connection must be closed (1003).
	ErrBinary = errors.New("ws: binary message")
	// ErrInvalidUTF8: a text message that is not UTF-8; RFC 6455 has the
	// connection closed (1007).
	ErrInvalidUTF8 = errors.New("ws: text message is not valid UTF-8")
)

// Close codes of RFC 6455 for messages the gateway cannot take.
const (
	CloseUnsupportedData = 1003
	CloseInvalidPayload  = 1007
)

// Conn is one upgraded WebSocket connection: one reader (the caller of
// ReadMessage) and the Writer.
type Conn struct {
	*Writer
	ws       *websocket.Conn
	received prometheus.Counter // Options.BytesReceived
}

// New takes over an upgraded connection and starts its writer. Ping, pong and
// close frames from the client count as activity; pings are answered and a
// close frame is echoed through the writer.
func New(c *websocket.Conn, opt Options) *Conn {
	// net/http may leave its request deadlines on a hijacked connection;
	// liveness is the writer's job from here on.
	_ = c.NetConn().SetDeadline(time.Time{})
	w := NewWriter(c.NetConn(), opt)
	// No gorilla read limit: ReadMessage enforces its own, so that an
	// oversized frame gets a pusher:error instead of a bare close 1009.
	c.SetReadLimit(0)
	c.SetPingHandler(func(data string) error {
		w.Touch()
		w.pong([]byte(data))
		return nil
	})
	c.SetPongHandler(func(string) error {
		w.Touch()
		return nil
	})
	c.SetCloseHandler(func(code int, _ string) error {
		w.Touch()
		if code == websocket.CloseNoStatusReceived {
			code = 0 // echoed as a close frame without a code
		}
		w.closeReply(code)
		return nil
	})
	return &Conn{Writer: w, ws: c, received: opt.BytesReceived}
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled keeps buffers that once held a huge message out of the pool.
const maxPooled = 64 << 10

// NextMessage waits for the next data message; ReadMessage then reads it.
// The two are apart so that a connection that waits for its client holds
// only a small stack: NextMessage is inlined into its caller's loop, and the
// Go runtime halves an idle goroutine's stack only while it uses less than a
// quarter of it.
func (c *Conn) NextMessage() Next {
	op, r, err := c.ws.NextReader()
	return Next{op, r, err}
}

// Next is a message NextMessage waited for.
type Next struct {
	op  int
	r   io.Reader
	err error
}

// ReadMessage reads the message of next into a pooled buffer, which the
// caller hands back with Release. A message longer than limit bytes is
// dropped with ErrTooLarge, as long as it stays within hardCap; past hardCap
// it returns ErrOverHardCap without reading further. Any other error is
// final. A binary message gives ErrBinary and a text message that is not
// UTF-8 ErrInvalidUTF8: the caller closes the connection with CloseWithCode.
func (c *Conn) ReadMessage(next Next, limit, hardCap int) (*bytes.Buffer, error) {
	op, r, err := next.op, next.r, next.err
	if err != nil {
		return nil, err
	}
	c.Touch()
	if op == websocket.BinaryMessage {
		return nil, ErrBinary
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		c.Release(buf)
		return nil, fmt.Errorf("ws: reading a message: %w", err)
	}
	if n <= int64(limit) {
		if c.received != nil {
			c.received.Add(float64(n))
		}
		if !utf8.Valid(buf.Bytes()) {
			c.Release(buf)
			return nil, ErrInvalidUTF8
		}
		return buf, nil
	}
	c.Release(buf)
	// Skip the rest of the oversized message, up to the hard cap.
	rest := int64(hardCap) - n + 1
	_, err = io.CopyN(io.Discard, r, rest)
	switch {
	case errors.Is(err, io.EOF):
		return nil, ErrTooLarge
	case err != nil:
		return nil, fmt.Errorf("ws: reading a message: %w", err)
	}
	return nil, ErrOverHardCap // CopyN read all of rest: one byte past the cap
}

// Release hands a buffer from ReadMessage back.
func (c *Conn) Release(buf *bytes.Buffer) {
	if buf != nil && buf.Cap() <= maxPooled {
		bufPool.Put(buf)
	}
}

// Discard reads and drops messages until the connection ends, then tells the
// writer. A connection refused right after the upgrade uses it to wait for
// the client's close reply.
func (c *Conn) Discard() {
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			break
		}
		c.Touch()
		if _, err := io.Copy(io.Discard, r); err != nil {
			break
		}
	}
	c.ReaderDone()
}
