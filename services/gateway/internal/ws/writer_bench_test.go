package ws

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection; the client end is
// drained and counted in the background.
func tcpPair(b *testing.B) (net.Conn, *atomic.Int64) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
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
		b.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	var read atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			read.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { server.Close(); client.Close() })
	return server, &read
}

// BenchmarkBurst writes bursts of frames to a real socket: through the
// Writer (queued frames leave in one writev) and, as the baseline, with one
// write per frame, the way gorilla's WriteMessage sends them.
func BenchmarkBurst(b *testing.B) {
	frame := []byte(`{"event":"App\\Events\\Progress","channel":"private-job.42","data":"{\"pct\":50}"}`)
	wire := int64(len(frame) + 2)
	for _, burst := range []int{1, 10, 100} {
		b.Run("writer/burst="+strconv.Itoa(burst), func(b *testing.B) {
			nc, read := tcpPair(b)
			w := NewWriter(nc, Options{})
			b.Cleanup(w.Abort)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for range burst {
					w.Send(frame)
				}
				want := int64(i+1) * int64(burst) * wire
				for read.Load() < want {
					time.Sleep(time.Microsecond)
				}
			}
		})
		b.Run("write-per-frame/burst="+strconv.Itoa(burst), func(b *testing.B) {
			nc, read := tcpPair(b)
			buf := make([]byte, 0, 2+len(frame))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for range burst {
					buf = appendHeader(buf[:0], opText, len(frame))
					buf = append(buf, frame...)
					_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := nc.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				want := int64(i+1) * int64(burst) * wire
				for read.Load() < want {
					time.Sleep(time.Microsecond)
				}
			}
		})
	}
}
