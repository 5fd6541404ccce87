package ws

import (
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tcpPair returns both ends of a loopback TCP connection; the client end is
// drained and counted in the background.
func tcpPair(b *testing.B) (net.Conn, *atomic.Int64) {
	b.Helper()
	var read atomic.Int64
	return tcpPairFunc(b, func(n int) { read.Add(int64(n)) }), &read
}

// tcpPairFunc returns the server end of a loopback TCP connection whose
// client end is drained in the background, calling read with the size of
// each read.
func tcpPairFunc(b *testing.B, read func(n int)) net.Conn {
	b.Helper()
	server, client := loopback(b)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				read(n)
			}
			if err != nil {
				return
			}
		}
	}()
	return server
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

// BenchmarkFanOut queues one frame on each of 200 connections, as the hub
// does for an event of a channel with 200 local subscribers, and waits until
// every client has read it. cpu-ns/frame is the process's CPU time (writers
// and the clients' readers) per delivered frame.
func BenchmarkFanOut(b *testing.B) {
	const conns = 200
	frame := []byte(`{"event":"App\\Events\\Progress","channel":"shared","data":"{\"pct\":50}"}`)
	wire := int64(len(frame) + 2)
	var total, want atomic.Int64
	delivered := make(chan struct{}, 1)
	writers := make([]*Writer, conns)
	sent := prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"})
	sentBytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"})
	for i := range writers {
		nc := tcpPairFunc(b, func(n int) {
			if total.Add(int64(n)) == want.Load() {
				delivered <- struct{}{}
			}
		})
		// The gateway's writers share its two counters.
		writers[i] = NewWriter(nc, Options{Sent: sent, BytesSent: sentBytes})
		b.Cleanup(writers[i].Abort)
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		want.Store(int64(i+1) * conns * wire)
		for _, w := range writers {
			w.Send(frame)
		}
		<-delivered
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N*conns), "cpu-ns/frame")
}

// cpuTime is the process's user and system CPU time so far, in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
