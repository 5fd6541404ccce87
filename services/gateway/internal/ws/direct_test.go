package ws

import (
	"bufio"
	"bytes"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
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
