package ws

import (
	"bufio"
	"bytes"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopback returns both ends of a loopback TCP connection.
func loopback(tb testing.TB) (server, client net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
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
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		client.Close()
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// tcp returns a writer on the server end of a loopback TCP connection and a
// reader of its client end, which reads only when the test does.
func tcp(t *testing.T, opt Options) (*Writer, *bufio.Reader, net.Conn) {
	t.Helper()
	server, client := loopback(t)
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

// A worker that always finds a writer ready gives the CPU up after
// yieldEvery writers: its writevs are raw system calls, so nothing else
// takes its P from it until the scheduler's 10 ms slice ends. On one P, the
// test's goroutine gets the CPU back, from the queue behind the workers,
// long before they have written to every connection (without the yield,
// they write to all of them first).
func TestBusyWorkerLetsOthersRun(t *testing.T) {
	// Each of the pool's workers (GOMAXPROCS of them as the process
	// started) may have a turn or two before this goroutine's.
	conns := 8 * pool.max * yieldEvery
	writers := make([]*Writer, conns)
	readers := make([]*bufio.Reader, conns)
	for i := range writers {
		writers[i], readers[i], _ = tcp(t, Options{})
	}
	writes := recordDirect(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, w := range writers {
		w.Send([]byte("x"))
	}
	runtime.Gosched()
	got := len(writes())
	for _, r := range readers {
		expectText(t, r, "x")
	}
	if got > conns/2 {
		t.Fatalf("the workers wrote to %d of %d connections before another goroutine ran, want at most %d", got, conns, conns/2)
	}
}
