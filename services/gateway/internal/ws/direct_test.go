package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/protocol"
)

// tcp returns a writer on the server end of a loopback TCP connection and a
// reader of its client end, which reads only when the test does.
func tcp(t *testing.T, opt Options) (*Writer, *bufio.Reader, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	w := NewWriter(server, opt)
	t.Cleanup(w.Abort)
	if w.raw == nil {
		t.Skip("no direct writes on this platform")
	}
	return w, bufio.NewReader(client), client
}

// recordDirect records what each direct write wrote of how much, for the
// test's duration (a writer of an earlier test may still add to it).
func recordDirect(t *testing.T) func() [][2]int {
	var mu sync.Mutex
	var writes [][2]int
	record := func(n, of int) {
		mu.Lock()
		writes = append(writes, [2]int{n, of})
		mu.Unlock()
	}
	wroteNow.Store(&record)
	t.Cleanup(func() { wroteNow.Store(nil) })
	return func() [][2]int {
		mu.Lock()
		defer mu.Unlock()
		return append([][2]int(nil), writes...)
	}
}

// A frame the socket takes whole leaves in one direct write.
func TestDirectWrite(t *testing.T) {
	writes := recordDirect(t)
	w, r, _ := tcp(t, Options{})
	w.Send([]byte("hello"))
	expectText(t, r, "hello")
	// The client may read before the writer records the write.
	waitFor(t, "the direct write", func() bool { return slices.Contains(writes(), [2]int{7, 7}) })
}

// A frame larger than the socket takes goes partly in the direct write; the
// rest, then the frames queued behind it, follow in order once the client
// reads.
func TestDirectWriteRestFollowsInOrder(t *testing.T) {
	writes := recordDirect(t)
	w, r, _ := tcp(t, Options{QueueBytes: 64 << 20, WriteTimeout: time.Minute})
	big := make([]byte, 16<<20) // more than loopback's socket buffers hold
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	w.Send(big)
	const wire = 10 + 16<<20
	partial := func() bool {
		return slices.ContainsFunc(writes(), func(w [2]int) bool { return w[1] == wire && w[0] > 0 && w[0] < wire })
	}
	waitFor(t, "a direct write of part of the frame", partial)
	for i := range 10 {
		w.Send([]byte{'0' + byte(i)})
	}
	f := readFrame(t, r)
	if f.op != opText || !bytes.Equal(f.payload, big) {
		t.Fatalf("the large frame came back changed (op %x, %d bytes)", f.op, len(f.payload))
	}
	for i := range 10 {
		expectText(t, r, string([]byte{'0' + byte(i)}))
	}
}

// The close handshake, pings' pongs and the slow-consumer close on a real
// socket, where frames leave in direct writes.
func TestDirectWriteClose(t *testing.T) {
	w, r, _ := tcp(t, Options{})
	w.Send([]byte("first"))
	w.pong([]byte("p"))
	w.Close(4009, "bye")
	expectText(t, r, "first")
	if f := readFrame(t, r); f.op != opPong || string(f.payload) != "p" {
		t.Fatalf("got op %x %q, want pong", f.op, f.payload)
	}
	expectClose(t, r, 4009)
	w.ReaderDone()
	<-w.Done()
}

func TestDirectWriteSlowConsumer(t *testing.T) {
	w, r, _ := tcp(t, Options{QueueBytes: 64 << 10, WriteTimeout: time.Minute})
	frame := bytes.Repeat([]byte("x"), 1<<10)
	sent := 0
	for w.Send(frame) {
		sent++
		if sent > 1<<20 {
			t.Fatal("a client that does not read was never closed")
		}
	}
	// What the socket took before the queue filled is still delivered,
	// then the close.
	for {
		f := readFrame(t, r)
		if f.op == opText && bytes.Equal(f.payload, frame) {
			sent--
			continue
		}
		if f.op != opText || !bytes.Contains(f.payload, []byte(`"pusher:error"`)) {
			t.Fatalf("got op %x %.40q, want the frames then pusher:error", f.op, f.payload)
		}
		break
	}
	if f := readFrame(t, r); f.op != opClose {
		t.Fatalf("got op %x, want close", f.op)
	}
	if sent <= 0 {
		t.Fatalf("every frame accepted was delivered: the queue never held any")
	}
}

// Frames to sockets with room leave from the pool's workers: a fan-out
// starts no goroutine per connection.
func TestFanOutStartsNoFlusher(t *testing.T) {
	const conns = 50
	writers := make([]*Writer, conns)
	readers := make([]*bufio.Reader, conns)
	for i := range writers {
		writers[i], readers[i], _ = tcp(t, Options{})
	}
	before := flushers.Load()
	for i := range 20 {
		frame := []byte(strconv.Itoa(i))
		for _, w := range writers {
			w.Send(frame)
		}
		for _, r := range readers {
			expectText(t, r, string(frame))
		}
	}
	if n := flushers.Load() - before; n != 0 {
		t.Fatalf("%d flusher goroutines started for %d frames, want none", n, 20*conns)
	}
}

// Frames queued while a writer waits its turn in the pool leave with it, in
// order.
func TestPooledWriterKeepsOrder(t *testing.T) {
	w, r, _ := tcp(t, Options{})
	for i := range 1000 {
		w.Send([]byte(strings.Repeat("x", i%300)))
	}
	for i := range 1000 {
		expectText(t, r, strings.Repeat("x", i%300))
	}
}

func TestRestOf(t *testing.T) {
	long := bytes.Repeat([]byte("y"), 200) // a 4-byte header
	items := []item{{op: opText, b: []byte("abc")}, {op: opText, b: long}, {op: opClose}}
	tests := []struct {
		name  string
		wrote int
		left  []item
		text  int
	}{
		{"nothing", 0, []item{
			{op: opCont, b: []byte{0x81, 3}, rest: true}, {op: opText, b: []byte("abc"), rest: true},
			{op: opText, b: long}, {op: opClose}}, 0},
		{"in the first header", 1, []item{
			{op: opCont, b: []byte{3}, rest: true}, {op: opText, b: []byte("abc"), rest: true},
			{op: opText, b: long}, {op: opClose}}, 0},
		{"in the first payload", 3, []item{
			{op: opText, b: []byte("bc"), rest: true}, {op: opText, b: long}, {op: opClose}}, 0},
		{"the first frame", 5, []item{{op: opCont, b: []byte{0x81, 126, 0, 200}, rest: true},
			{op: opText, b: long, rest: true}, {op: opClose}}, 1},
		{"in the second header", 7, []item{{op: opCont, b: []byte{0, 200}, rest: true},
			{op: opText, b: long, rest: true}, {op: opClose}}, 1},
		{"in the second payload", 9 + 150, []item{{op: opText, b: long[150:], rest: true}, {op: opClose}}, 1},
		{"in an empty frame's header", 5 + 204 + 1, []item{{op: opClose, b: []byte{0}, rest: true}}, 2},
		{"a rest", 0, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := items
			if tt.name == "a rest" {
				in = []item{{op: opText, b: []byte("tail"), rest: true}, {op: opText, b: []byte("x")}}
				tt.wrote = 2
				tt.left = []item{{op: opText, b: []byte("il"), rest: true}, {op: opText, b: []byte("x")}}
			}
			left, text := restOf(in, tt.wrote)
			if text != tt.text || len(left) != len(tt.left) {
				t.Fatalf("got %v, %d text frames; want %v, %d", left, text, tt.left, tt.text)
			}
			for i := range left {
				if left[i].op != tt.left[i].op || left[i].rest != tt.left[i].rest || !bytes.Equal(left[i].b, tt.left[i].b) {
					t.Fatalf("item %d: got %+v, want %+v", i, left[i], tt.left[i])
				}
			}
		})
	}
}

// TestWriterEndsUnderConcurrentUse on real sockets, whose writers go
// through the pool and, when a socket fills, a flusher of their own.
func TestPooledWriterEndsUnderConcurrentUse(t *testing.T) {
	ends := []struct {
		name string
		end  func(w *Writer)
	}{
		{"close", func(w *Writer) { w.Close(protocol.CodeGenericReconnect, "bye"); w.ReaderDone() }},
		{"slow", func(w *Writer) { w.CloseSlow(); w.ReaderDone() }},
		{"abort", func(w *Writer) { w.Abort() }},
	}
	frame := bytes.Repeat([]byte("f"), 2000)
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			for i := range 20 {
				w, r, client := tcp(t, Options{QueueBytes: 256 << 10, CloseGrace: 10 * time.Millisecond})
				var wg sync.WaitGroup
				for range 3 {
					wg.Go(func() {
						for range 300 {
							w.Send(frame)
						}
					})
				}
				wg.Go(func() {
					// Frames stay whole up to the end, whatever was cut.
					for {
						var h [2]byte
						if _, err := io.ReadFull(r, h[:]); err != nil {
							return
						}
						if h[0]&0x80 == 0 {
							t.Errorf("run %d: not a frame header: % x", i, h)
							return
						}
						n := int(h[1] & 0x7F)
						if n == 126 {
							var b [2]byte
							if _, err := io.ReadFull(r, b[:]); err != nil {
								return
							}
							n = int(binary.BigEndian.Uint16(b[:]))
						}
						if _, err := r.Discard(n); err != nil {
							return
						}
					}
				})
				wg.Go(func() {
					runtime.Gosched()
					time.Sleep(time.Duration(i) * 20 * time.Microsecond)
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
