package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		name string
		op   byte
		n    int
		want []byte
	}{
		{"empty close", opClose, 0, []byte{0x88, 0}},
		{"short text", opText, 125, []byte{0x81, 125}},
		{"16-bit length", opText, 126, []byte{0x81, 126, 0, 126}},
		{"largest 16-bit", opText, 65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{"64-bit length", opText, 65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{"pong", opPong, 3, []byte{0x8A, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := appendHeader(nil, tt.op, tt.n); !bytes.Equal(got, tt.want) {
				t.Errorf("got % x, want % x", got, tt.want)
			}
		})
	}
}

func TestClosePayload(t *testing.T) {
	if p := closePayload(0, "ignored"); p != nil {
		t.Errorf("code 0: % x", p)
	}
	p := closePayload(4100, "slow")
	if binary.BigEndian.Uint16(p) != 4100 || string(p[2:]) != "slow" {
		t.Errorf("got % x", p)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	p = closePayload(4200, long)
	if len(p) > 125 || !utf8.Valid(p[2:]) {
		t.Errorf("long reason: %d bytes, valid UTF-8 %v", len(p), utf8.Valid(p[2:]))
	}
}

// wsFrame is one frame read back from the writer.
type wsFrame struct {
	op      byte
	payload []byte
}

func readFrame(t *testing.T, r *bufio.Reader) wsFrame {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("reading a frame header: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		t.Fatalf("not a final unmasked frame: % x", h)
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(r, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(r, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("reading a payload of %d: %v", n, err)
	}
	return wsFrame{h[0] & 0x0F, p}
}

func expectText(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	f := readFrame(t, r)
	if f.op != opText || string(f.payload) != want {
		t.Fatalf("got op %x %q, want text %q", f.op, f.payload, want)
	}
}

func expectClose(t *testing.T, r *bufio.Reader, code int) {
	t.Helper()
	f := readFrame(t, r)
	if f.op != opText || !strings.Contains(string(f.payload), `"pusher:error"`) {
		t.Fatalf("got op %x %q, want pusher:error", f.op, f.payload)
	}
	f = readFrame(t, r)
	if f.op != opClose || len(f.payload) < 2 || int(binary.BigEndian.Uint16(f.payload)) != code {
		t.Fatalf("got op %x % x, want close %d", f.op, f.payload, code)
	}
}

func pipe(t *testing.T, opt Options) (*Writer, *bufio.Reader, net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	w := NewWriter(server, opt)
	t.Cleanup(w.Abort)
	return w, bufio.NewReader(client), client
}

// deadlineConn records the write deadlines set on a connection.
type deadlineConn struct {
	net.Conn
	mu   sync.Mutex
	last time.Time
	sets int
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.last, c.sets = t, c.sets+1
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// A writer with nothing left to write leaves no write deadline behind: an
// expired one fires a timer, and a wave of connections gone quiet would
// wake the process once each.
func TestIdleWriterLeavesNoWriteDeadline(t *testing.T) {
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	dc := &deadlineConn{Conn: server}
	w := NewWriter(dc, Options{})
	t.Cleanup(w.Abort)
	r := bufio.NewReader(client)
	for i := range 3 {
		w.Send([]byte("frame " + strconv.Itoa(i)))
		expectText(t, r, "frame "+strconv.Itoa(i))
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			w.mu.Lock()
			flushing := w.flushing
			w.mu.Unlock()
			if !flushing {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the flusher did not end")
			}
		}
		dc.mu.Lock()
		last, sets := dc.last, dc.sets
		dc.mu.Unlock()
		if sets == 0 {
			t.Fatal("no write deadline was set for the write")
		}
		if !last.IsZero() {
			t.Fatalf("write deadline %v left set after the queue emptied", last)
		}
	}
}

func TestWriterKeepsOrder(t *testing.T) {
	w, r, _ := pipe(t, Options{})
	for i := range 100 {
		w.Send([]byte(strings.Repeat("x", i)))
	}
	for i := range 100 {
		expectText(t, r, strings.Repeat("x", i))
	}
}

func TestSlowConsumerIsClosed(t *testing.T) {
	w, r, _ := pipe(t, Options{QueueBytes: 100})
	// net.Pipe does not buffer: the first frame blocks the writer until it
	// is read, and the rest pile up in the queue.
	if !w.Send([]byte("first")) {
		t.Fatal("first frame refused")
	}
	waitFor(t, "the writer to take the first frame", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.queue) == 0
	})
	sent := 1
	for w.Send([]byte(strings.Repeat("q", 30))) {
		sent++
		if sent > 100 {
			t.Fatal("the queue never filled")
		}
	}
	if w.Send([]byte("after")) {
		t.Error("a closing writer accepted a frame")
	}
	expectText(t, r, "first")
	// What was queued is dropped: only the error and the close follow.
	expectClose(t, r, protocol.CodeOverCapacity)
	w.ReaderDone()
	<-w.Done()
}

func TestCloseFlushesQueuedFrames(t *testing.T) {
	w, r, _ := pipe(t, Options{})
	w.Send([]byte("a"))
	w.Send([]byte("b"))
	w.Close(protocol.CodeGenericReconnect, "bye")
	w.Close(protocol.CodePongNotReceived, "ignored: already closing")
	if !w.Closing() {
		t.Error("not closing")
	}
	expectText(t, r, "a")
	expectText(t, r, "b")
	expectClose(t, r, protocol.CodeGenericReconnect)
	select {
	case <-w.Done():
		t.Fatal("hung up before the client answered")
	default:
	}
	w.ReaderDone()
	<-w.Done()
}

func TestCloseGrace(t *testing.T) {
	w, r, _ := pipe(t, Options{CloseGrace: 10 * time.Millisecond})
	w.Close(protocol.CodeGenericReconnect, "bye")
	expectClose(t, r, protocol.CodeGenericReconnect)
	<-w.Done() // without a reply from the client
}

func TestReaderDoneEndsTheConnection(t *testing.T) {
	w, r, _ := pipe(t, Options{})
	w.ReaderDone()
	f := readFrame(t, r)
	if f.op != opClose || int(binary.BigEndian.Uint16(f.payload)) != 1000 {
		t.Fatalf("got op %x % x, want close 1000", f.op, f.payload)
	}
	<-w.Done()
}

func TestLiveness(t *testing.T) {
	t.Run("silent client", func(t *testing.T) {
		w, r, _ := pipe(t, Options{PingInterval: 20 * time.Millisecond, PongTimeout: 20 * time.Millisecond})
		expectText(t, r, string(protocol.Ping))
		expectClose(t, r, protocol.CodePongNotReceived)
		w.ReaderDone()
	})
	t.Run("active client", func(t *testing.T) {
		w, r, _ := pipe(t, Options{PingInterval: 20 * time.Millisecond, PongTimeout: 20 * time.Millisecond})
		for range 3 {
			expectText(t, r, string(protocol.Ping))
			w.Touch()
		}
		if w.Closing() {
			t.Fatal("closed an active client")
		}
	})
}

func TestWriteTimeout(t *testing.T) {
	w, _, _ := pipe(t, Options{WriteTimeout: 20 * time.Millisecond})
	w.Send([]byte("never read"))
	<-w.Done()
	if w.Send([]byte("x")) {
		t.Error("a stopped writer accepted a frame")
	}
}

func TestPong(t *testing.T) {
	w, r, _ := pipe(t, Options{})
	w.pong([]byte("abc"))
	w.Send([]byte("text"))
	if f := readFrame(t, r); f.op != opPong || string(f.payload) != "abc" {
		t.Fatalf("got op %x %q", f.op, f.payload)
	}
	expectText(t, r, "text")
}

// A client that stops reading overflows its queue and then lets the write
// of the final frames time out: it is one slow consumer, counted once.
func TestSlowConsumerCountedOnce(t *testing.T) {
	slow := prometheus.NewCounter(prometheus.CounterOpts{Name: "slow"})
	w, _, _ := pipe(t, Options{QueueBytes: 100, WriteTimeout: 50 * time.Millisecond, SlowConsumer: slow})
	w.Send([]byte("first")) // net.Pipe: blocks the writer, never read
	for sent := 0; w.Send([]byte(strings.Repeat("q", 30))); sent++ {
		if sent > 100 {
			t.Fatal("the queue never filled")
		}
	}
	<-w.Done()
	if got := testutil.ToFloat64(slow); got != 1 {
		t.Fatalf("slow consumer counted %v times, want 1", got)
	}
	w.CloseSlow()
	if got := testutil.ToFloat64(slow); got != 1 {
		t.Fatalf("after CloseSlow on a closed writer: counted %v times, want 1", got)
	}
}

// Frames queued while a write is under way leave together, in the next
// batch (one writev), and nothing is written in between.
func TestFramesQueuedDuringAWriteLeaveInOneBatch(t *testing.T) {
	var mu sync.Mutex
	var batches []int
	record := func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}
	tookBatch.Store(&record)
	t.Cleanup(func() { tookBatch.Store(nil) })
	w, r, _ := pipe(t, Options{})
	w.Send([]byte("first")) // net.Pipe: the write waits for the reader
	waitFor(t, "the writer to take the first frame", func() bool { return w.Queued() == 0 })
	for i := range 10 {
		w.Send([]byte{'0' + byte(i)})
	}
	expectText(t, r, "first")
	for i := range 10 {
		expectText(t, r, string([]byte{'0' + byte(i)}))
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(batches, []int{1, 10}) {
		t.Fatalf("batches %v, want [1 10]", batches)
	}
}

// A connection with nothing to write holds no goroutine of its writer: the
// flusher ends when the queue is empty, and the next frame starts another.
func TestIdleWriterHoldsNoGoroutine(t *testing.T) {
	const conns = 50
	readers := make([]*bufio.Reader, conns)
	for i := range readers {
		w, r, _ := pipe(t, Options{PingInterval: time.Hour})
		w.Send([]byte("hello"))
		readers[i] = r
	}
	for _, r := range readers {
		expectText(t, r, "hello")
	}
	waitFor(t, "the writers' goroutines to end", func() bool { return writerGoroutines() == 0 })
}

// writerGoroutines counts the goroutines running a Writer's code.
func writerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "ws.(*Writer)")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Abort ends a writer whose write is blocked on a client that never reads.
func TestAbortEndsABlockedWrite(t *testing.T) {
	w, _, _ := pipe(t, Options{})
	w.Send([]byte("never read"))
	waitFor(t, "the writer to take the frame", func() bool { return w.Queued() == 0 })
	w.Abort()
	<-w.Done()
	if w.Send([]byte("x")) {
		t.Error("an aborted writer accepted a frame")
	}
}

// waitFor polls cond until it holds, for up to poll.Patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, poll.Patience, what, cond)
}

// Senders, a reader and each way of ending a connection, all at once: every
// writer ends (Done closes), with no flusher left behind, whatever the
// interleaving. Run with -race.
func TestWriterEndsUnderConcurrentUse(t *testing.T) {
	ends := []struct {
		name string
		end  func(w *Writer)
	}{
		{"close", func(w *Writer) { w.Close(protocol.CodeGenericReconnect, "bye"); w.ReaderDone() }},
		{"slow", func(w *Writer) { w.CloseSlow(); w.ReaderDone() }},
		{"reader done", func(w *Writer) { w.ReaderDone() }},
		{"abort", func(w *Writer) { w.Abort() }},
	}
	transports := []struct {
		name        string
		open        func(t *testing.T, opt Options) (*Writer, *bufio.Reader, net.Conn)
		size, queue int
	}{
		{"pipe", pipe, 5, 4 << 10},
		// TCP writers go through the pool and, when the socket fills, a
		// flusher of their own.
		{"tcp", tcp, 2000, 256 << 10},
	}
	for _, tr := range transports {
		for _, e := range ends {
			t.Run(tr.name+"/"+e.name, func(t *testing.T) {
				frame := bytes.Repeat([]byte("f"), tr.size)
				for i := range 50 {
					w, r, client := tr.open(t, Options{QueueBytes: tr.queue, CloseGrace: 10 * time.Millisecond})
					var wg sync.WaitGroup
					for range 3 {
						wg.Go(func() {
							for range 100 {
								w.Send(frame)
							}
						})
					}
					wg.Go(func() {
						if err := readWholeFrames(r); err != nil {
							t.Errorf("run %d: %v", i, err)
						}
					})
					wg.Go(func() {
						runtime.Gosched()
						if i%2 == 0 {
							time.Sleep(time.Duration(i) * 10 * time.Microsecond)
						}
						e.end(w)
					})
					select {
					case <-w.Done():
					case <-time.After(10 * time.Second):
						t.Fatalf("run %d: the writer never ended", i)
					}
					client.Close()
					wg.Wait()
					if w.Send([]byte("late")) {
						t.Fatalf("run %d: an ended writer accepted a frame", i)
					}
				}
				waitFor(t, "the flushers to end", func() bool { return writerGoroutines() == 0 })
			})
		}
	}
}

// readWholeFrames reads frames until the connection ends, and fails on a
// frame cut short by a later one (a header where a frame should start).
func readWholeFrames(r *bufio.Reader) error {
	for {
		var h [2]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil
		}
		if h[0]&0x80 == 0 || h[0]&0x70 != 0 || h[1]&0x80 != 0 {
			return fmt.Errorf("not the header of a final unmasked frame: % x", h)
		}
		n := int(h[1] & 0x7F)
		if n == 126 {
			var b [2]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil
			}
			n = int(binary.BigEndian.Uint16(b[:]))
		}
		if _, err := r.Discard(n); err != nil {
			return nil
		}
	}
}
