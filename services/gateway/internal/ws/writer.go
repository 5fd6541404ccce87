// Package ws holds one WebSocket connection of the gateway: a reader that
// enforces frame-size limits, and a writer that owns every write, fed by a
// queue bounded in bytes, which also keeps the client alive with pings and
// closes it when it stays silent.
//
// Gorilla's Conn performs the upgrade and reads frames; the writer encodes
// server frames itself (they are unmasked and need no state) so that all the
// frames queued for a connection leave in one writev system call. Gorilla
// writes only when a client breaks the framing protocol (its close frame
// 1002); each write is a single call on the socket, so frames never
// interleave. BenchmarkBurst measured the gain on loopback TCP: a burst of
// 100 queued frames leaves in about 30 µs, against 0.9 ms with one write per
// frame as gorilla's WriteMessage does; a lone frame costs the same.
//
// On Linux a batch first goes in one writev that does not wait
// (batchWriter.writeNow): a socket with room takes it without a write
// deadline or the poller; only what a full socket leaves is written under
// WriteTimeout.
//
// No writer holds a goroutine while idle (a stack is 4 KiB or more, the
// largest part of an idle connection's memory); liveness checks run on a
// timer. A writer with frames queued waits for one of the pool's workers
// (pool.go), which writes its queue without waiting; a socket that is full,
// or one without direct writes, gets a flusher goroutine of its own, which
// writes batches until the queue is empty and then ends.
package ws

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Options tune one connection.
type Options struct {
	// QueueBytes bounds the frames waiting to be written. A client that lets
	// more pile up is closed with 4100 (slow consumer).
	QueueBytes int
	// WriteTimeout bounds one write; a client that does not read within it is
	// dropped.
	WriteTimeout time.Duration
	// PingInterval is the silence after which the server sends pusher:ping;
	// 0 disables server pings.
	PingInterval time.Duration
	// PongTimeout is how long a pinged client has to show any activity
	// before it is closed with 4201.
	PongTimeout time.Duration
	// CloseGrace is how long the writer waits, after its close frame, for
	// the client's close reply before it drops the TCP connection.
	CloseGrace time.Duration

	// Sent counts frames written; SlowConsumer counts clients closed for
	// not reading, each once (queue overflow or write timeout, whichever
	// comes first). Both may be nil.
	Sent         prometheus.Counter
	SlowConsumer prometheus.Counter
	// BytesSent counts bytes written to the socket (frames with their
	// headers); BytesReceived the payload of data messages read. May be nil.
	BytesSent     prometheus.Counter
	BytesReceived prometheus.Counter
}

// Defaults of Options.
const (
	DefaultQueueBytes   = 1 << 20
	DefaultWriteTimeout = 10 * time.Second
	DefaultCloseGrace   = time.Second
)

// maxBatch bounds the frames given to one writev.
const maxBatch = 256

type item struct {
	op byte
	b  []byte
	// rest: b is the rest of a frame whose start a write that did not wait
	// sent (restOf); it goes out as it is, without a header.
	rest bool
}

// Writer states.
const (
	stateOpen    = iota
	stateClosing // the final frames are queued; nothing more is accepted
	stateClosed  // the writer has stopped, or is stopping without writing more
)

// Writer owns every write to one connection. Writes happen on a pool worker
// (flushOnce) or on the writer's flusher, a goroutine that exists only while
// a full socket or one without direct writes has frames waiting (flush);
// flushing says one of them has the connection, and only one ever has.
type Writer struct {
	nc  net.Conn
	opt Options
	// raw, when not nil, lets the flusher try each batch without a
	// deadline first (batchWriter.writeNow).
	raw syscall.RawConn

	mu     sync.Mutex
	queue  []item
	queued int // bytes of the frames in queue
	state  int
	// flushing: a flusher runs and owns the socket's writes.
	flushing bool
	// slowCounted: the connection was counted in SlowConsumer.
	slowCounted bool
	// readerDone: nothing more will be read. closeSent: the close frame
	// was written; the writer waits for the client's reply (readerDone),
	// CloseGrace or Abort. aborted: Abort was called. finished: the
	// connection is closed and done is closed.
	readerDone, closeSent, aborted, finished bool
	// drained, when not nil, is closed when the writer next takes the
	// queue (see WaitRoom).
	drained chan struct{}
	// liveness pings a silent client and closes one that does not answer
	// (nil without pings); pingSent is when the outstanding ping was sent,
	// 0 if none. grace ends the wait for the client's close reply.
	liveness *time.Timer
	pingSent int64
	grace    *time.Timer

	done chan struct{}

	activity atomic.Int64 // unix nanoseconds of the last frame read
}

// NewWriter returns the writer of nc. The caller reads from nc (or calls
// ReaderDone when it never will).
func NewWriter(nc net.Conn, opt Options) *Writer {
	option.Default(&opt.QueueBytes, DefaultQueueBytes)
	option.Default(&opt.WriteTimeout, DefaultWriteTimeout)
	option.Default(&opt.CloseGrace, DefaultCloseGrace)
	w := &Writer{nc: nc, opt: opt, raw: directConn(nc), done: make(chan struct{})}
	w.Touch()
	if opt.PingInterval > 0 {
		w.mu.Lock() // the timer may fire before liveness is set
		w.liveness = time.AfterFunc(opt.PingInterval, w.checkLiveness)
		w.mu.Unlock()
	}
	return w
}

// Touch records activity from the client.
func (w *Writer) Touch() { w.activity.Store(time.Now().UnixNano()) }

// Send queues a text frame. It never blocks. The frame is shared, not
// copied: callers must not change it afterwards. Send reports false when the
// frame will not be written: the connection is closing, or the queue is over
// its bound, in which case the client is closed as a slow consumer.
func (w *Writer) Send(frame []byte) bool { return w.enqueue(opText, frame) }

// pong answers a WebSocket ping.
func (w *Writer) pong(data []byte) { w.enqueue(opPong, data) }

func (w *Writer) enqueue(op byte, b []byte) bool {
	w.mu.Lock()
	if w.state != stateOpen {
		w.mu.Unlock()
		return false
	}
	// A single frame larger than the bound still goes through an empty
	// queue: only a backlog makes a slow consumer.
	if w.queued > 0 && w.queued+len(b) > w.opt.QueueBytes {
		w.closeSlowLocked()
		w.mu.Unlock()
		return false
	}
	w.push(item{op: op, b: b})
	w.queued += len(b) + 2 // a frame costs its header even when empty
	w.mu.Unlock()
	return true
}

// push appends to the queue and starts the flusher unless one runs: a
// running flusher takes the queue again before it ends. w.mu is held.
func (w *Writer) push(it item) {
	if !w.flushing {
		w.flushing = true
		if w.raw != nil {
			pool.add(w)
		} else {
			// The queue is empty and has no slice: the flusher brings one.
			bw := batches.Get().(*batchWriter)
			w.queue, bw.queue = bw.queue[:0], nil
			flushers.Add(1)
			go w.flush(bw)
		}
	}
	w.queue = append(w.queue, it)
}

// Close sends pusher:error with code and message, then a close frame with the
// same code, after the frames already queued, and drops the connection once
// the client answered or CloseGrace passed. Later calls do nothing.
func (w *Writer) Close(code int, message string) {
	w.mu.Lock()
	w.closeLocked(code, message, false)
	w.mu.Unlock()
}

// closeLocked queues the final frames. discard drops what is queued first
// (a slow consumer would not read it anyway). w.mu is held.
func (w *Writer) closeLocked(code int, message string, discard bool) {
	if w.state != stateOpen {
		return
	}
	if discard {
		// The rest of a frame sent in part stays: the frames after it
		// must start at a frame boundary.
		keep := 0
		for keep < len(w.queue) && w.queue[keep].rest {
			keep++
		}
		clear(w.queue[keep:])
		w.queue = w.queue[:keep]
		w.queued = 0
	}
	w.push(item{op: opText, b: protocol.ErrorFrame(code, message)})
	w.push(item{op: opClose, b: closePayload(code, message)})
	w.state = stateClosing
}

// CloseSlow closes the client as a slow consumer (4100), dropping what is
// queued: a sender that buffers frames of its own for the connection calls
// it when its buffer passes the queue's bound.
func (w *Writer) CloseSlow() {
	w.mu.Lock()
	w.closeSlowLocked()
	w.mu.Unlock()
}

// closeSlowLocked closes a slow consumer and counts it, once per
// connection: a client that stops reading usually also lets the final
// frames' write time out, which must not count it again. w.mu is held.
func (w *Writer) closeSlowLocked() {
	if w.state != stateOpen {
		return
	}
	w.closeLocked(protocol.CodeOverCapacity, "Slow consumer: the client did not read its messages in time", true)
	w.countSlowLocked()
}

// countSlowLocked counts the connection as a slow consumer unless it was
// already. w.mu is held.
func (w *Writer) countSlowLocked() {
	if w.slowCounted {
		return
	}
	w.slowCounted = true
	if w.opt.SlowConsumer != nil {
		w.opt.SlowConsumer.Inc()
	}
}

// CloseWithCode closes the connection with a WebSocket close code of RFC
// 6455 and a reason, after the frames already queued, without
// pusher:error: the close is about the framing, not the Pusher protocol.
func (w *Writer) CloseWithCode(code int, reason string) {
	w.mu.Lock()
	if w.state == stateOpen {
		w.push(item{op: opClose, b: closePayload(code, reason)})
		w.state = stateClosing
	}
	w.mu.Unlock()
}

// closeReply answers a close frame from the client, or ends a connection
// whose reader stopped, with a bare close frame. w.mu is not held.
func (w *Writer) closeReply(code int) { w.CloseWithCode(code, "") }

// Closing reports whether the connection no longer accepts frames.
func (w *Writer) Closing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state != stateOpen
}

// ReaderDone tells the writer that nothing more will be read: it finishes
// the closing handshake (or starts one) and drops the connection.
func (w *Writer) ReaderDone() {
	w.mu.Lock()
	w.readerDone = true
	end := w.closeSent
	w.mu.Unlock()
	if end {
		w.finish()
		return
	}
	w.closeReply(websocketCloseNormal)
}

// Abort drops the connection at once, without waiting for queued frames.
func (w *Writer) Abort() {
	w.mu.Lock()
	w.aborted = true
	w.state = stateClosed
	flushing := w.flushing
	w.mu.Unlock()
	if flushing {
		// Interrupts the flusher's write; the flusher then finishes.
		_ = w.nc.Close()
		return
	}
	w.finish()
}

// Done is closed when the writer has stopped and the connection is closed.
func (w *Writer) Done() <-chan struct{} { return w.done }

const websocketCloseNormal = 1000

// finish closes the connection and done, once, and drops what is queued.
func (w *Writer) finish() {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return
	}
	w.finished = true
	w.state = stateClosed
	clear(w.queue)
	w.queue = nil
	w.queued = 0
	w.signalDrainedLocked()
	for _, t := range []*time.Timer{w.liveness, w.grace} {
		if t != nil {
			t.Stop()
		}
	}
	w.mu.Unlock()
	_ = w.nc.Close()
	close(w.done)
}

// batches keeps the buffers of a flusher, the queue's slices included, for
// the next one: an idle connection holds none.
var batches = sync.Pool{New: func() any { return new(batchWriter) }}

// maxKept bounds the queue slices kept in batches.
const maxKept = 4 * maxBatch

// flush is the flusher: it writes what is queued, batch after batch, and
// ends when the queue is empty, after the close frame, or on an error.
func (w *Writer) flush(bw *batchWriter) {
	defer func() {
		if cap(bw.queue) > maxKept || cap(bw.spare) > maxKept {
			bw.queue, bw.spare = nil, nil // once a huge backlog
		}
		batches.Put(bw)
	}()
	for {
		w.mu.Lock()
		if w.aborted || len(w.queue) == 0 {
			aborted := w.aborted
			if !aborted {
				// A write deadline left set expires with no write waiting
				// and still fires its timer: every connection that went
				// quiet would wake the process once. Cleared while this
				// flusher still owns the connection's writes.
				_ = w.nc.SetWriteDeadline(time.Time{})
			}
			w.endFlushLocked(bw)
			w.mu.Unlock()
			if aborted {
				w.finish()
			}
			return
		}
		batch, final := w.takeLocked(bw)
		w.mu.Unlock()

		err := w.write(bw, batch)
		clear(batch) // drop references to frames for the garbage collector
		bw.spare = batch[:0]
		if err != nil {
			w.mu.Lock()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				w.countSlowLocked()
			}
			w.endFlushLocked(bw)
			w.mu.Unlock()
			w.finish()
			return
		}
		if final {
			w.sentClose(bw)
			return
		}
	}
}

// takeLocked takes the queue as a batch to write, leaving the writer bw's
// spare slice, and reports whether the batch ends with the close frame. w.mu
// is held.
func (w *Writer) takeLocked(bw *batchWriter) (batch []item, final bool) {
	batch = w.queue
	w.queue, bw.spare = bw.spare[:0], nil
	w.queued = 0
	w.signalDrainedLocked()
	if f := tookBatch.Load(); f != nil {
		(*f)(len(batch))
	}
	return batch, w.state == stateClosing
}

// flushers counts the flusher goroutines started, for tests.
var flushers atomic.Int64

// tookBatch, set by tests only, sees the size of each batch a flusher or a
// pool worker takes (atomic: the pool's workers outlive a test).
var tookBatch atomic.Pointer[func(frames int)]

// endFlushLocked ends the flusher: what is still queued is dropped (the
// connection is ending then), and the queue's slice goes back to bw, or to
// the pool when bw is nil (a pool worker). w.mu is held.
func (w *Writer) endFlushLocked(bw *batchWriter) {
	clear(w.queue)
	if bw != nil {
		bw.queue = w.queue[:0]
	} else {
		pool.putFree(w.queue)
	}
	w.queue = nil
	w.queued = 0
	w.flushing = false
}

// sentClose runs when the close frame was written: the writer waits for the
// client's reply (the reader stops on it), CloseGrace or Abort, then hangs
// up.
func (w *Writer) sentClose(bw *batchWriter) {
	w.mu.Lock()
	w.endFlushLocked(bw)
	w.closeSent = true
	end := w.readerDone || w.aborted
	if !end {
		w.grace = time.AfterFunc(w.opt.CloseGrace, w.finish)
	}
	w.mu.Unlock()
	if end {
		w.finish()
	}
}

// checkLiveness runs when the liveness timer fires. It pings a client that
// has been silent for PingInterval, and closes one that stayed silent for
// PongTimeout after the ping.
func (w *Writer) checkLiveness() {
	now := time.Now().UnixNano()
	last := w.activity.Load()
	w.mu.Lock()
	if w.state != stateOpen {
		w.mu.Unlock()
		return
	}
	if w.pingSent != 0 && last <= w.pingSent {
		w.closeLocked(protocol.CodePongNotReceived, "Pong reply not received in time", false)
		w.mu.Unlock()
		return
	}
	if idle := time.Duration(now - last); idle < w.opt.PingInterval {
		w.pingSent = 0
		w.liveness.Reset(w.opt.PingInterval - idle)
		w.mu.Unlock()
		return
	}
	w.pingSent = now
	w.liveness.Reset(w.opt.PongTimeout)
	w.mu.Unlock()
	w.Send(protocol.Ping)
}

// batchWriter holds the buffers of one writev, reused across batches.
type batchWriter struct {
	// queue and spare are the two slices of the writer's queue, swapped
	// at each batch; the writer holds one of them while the flusher runs.
	queue, spare []item
	hdr          []byte
	bufs         net.Buffers
	out          net.Buffers // consumed by WriteTo; kept here so that it is not allocated per write
	direct       direct      // the vector of writeNow
}

// write sends the frames of batch, up to maxBatch of them per writev.
func (w *Writer) write(bw *batchWriter, batch []item) error {
	for len(batch) > 0 {
		n := min(len(batch), maxBatch)
		bufs, text := bw.vector(batch[:n])
		written, err := w.writeBuffers(bw, bufs)
		clear(bufs)
		if w.opt.BytesSent != nil && written > 0 {
			w.opt.BytesSent.Add(float64(written))
		}
		if err != nil {
			return err
		}
		if w.opt.Sent != nil && text > 0 {
			w.opt.Sent.Add(float64(text))
		}
		batch = batch[n:]
	}
	return nil
}

// vector returns the buffers of one writev of items (at most maxBatch), in
// bw, and how many text frames end in it.
func (bw *batchWriter) vector(items []item) (net.Buffers, int) {
	if cap(bw.hdr) < len(items)*maxHeader {
		bw.hdr = make([]byte, 0, len(items)*maxHeader)
	}
	hdr := bw.hdr[:0]
	bufs := bw.bufs[:0]
	text := 0
	for _, it := range items {
		if !it.rest {
			start := len(hdr)
			hdr = appendHeader(hdr, it.op, len(it.b))
			bufs = append(bufs, hdr[start:len(hdr):len(hdr)])
		}
		if len(it.b) > 0 {
			bufs = append(bufs, it.b)
		}
		if it.op == opText {
			text++
		}
	}
	bw.bufs = bufs[:0]
	return bufs, text
}

// writeBuffers writes bufs. A socket with room takes them in one writev that
// neither waits nor needs a deadline (about a twentieth of a frame's CPU in
// a fan-out, where most batches are one frame on a socket with room); what
// it does not take is written through the poller, under WriteTimeout.
func (w *Writer) writeBuffers(bw *batchWriter, bufs net.Buffers) (int64, error) {
	var written int64
	if w.raw != nil {
		n, err := bw.writeNow(w.raw, bufs)
		if f := wroteNow.Load(); f != nil {
			(*f)(n, bufsLen(bufs))
		}
		written = int64(n)
		if err != nil {
			return written, err
		}
		bufs = skip(bufs, n)
		if len(bufs) == 0 {
			return written, nil
		}
	}
	if err := w.nc.SetWriteDeadline(time.Now().Add(w.opt.WriteTimeout)); err != nil {
		return written, err
	}
	// WriteTo consumes its receiver: give it a copy of the slice header.
	bw.out = bufs
	n, err := bw.out.WriteTo(w.nc)
	return written + n, err
}

// wroteNow, set by tests only, sees what each writeNow wrote of how much.
var wroteNow atomic.Pointer[func(n, of int)]

func bufsLen(bufs net.Buffers) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// skip drops the first n bytes of bufs, in place.
func skip(bufs net.Buffers, n int) net.Buffers {
	for n > 0 && len(bufs) > 0 {
		if n < len(bufs[0]) {
			bufs[0] = bufs[0][n:]
			return bufs
		}
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	for len(bufs) > 0 && len(bufs[0]) == 0 {
		bufs = bufs[1:]
	}
	return bufs
}
