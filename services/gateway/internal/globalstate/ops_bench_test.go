package globalstate

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/poll"
)

// BenchmarkSubscribeWave: waves of 1,000 sockets each joining and leaving
// its own channel, 50 at a time, through the presence service on an
// embedded NATS server, until the state is persisted. cpu-µs/op is the
// process's CPU time (gateway, presence service and NATS server) per
// operation; batched against one message per operation.
func BenchmarkSubscribeWave(b *testing.B) {
	for _, oneByOne := range []bool{true, false} {
		b.Run(map[bool]string{true: "one-by-one", false: "batched"}[oneByOne], func(b *testing.B) {
			s, a, _, _ := twoGateways(b)
			a.oneByOne = oneByOne
			r := reader(b, s)
			const wave, workers = 1000, 50
			ctx := context.Background()
			cpu := func() time.Duration {
				var ru syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
				return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			before, msgs := cpu(), a.batches.Load()
			b.ResetTimer()
			for n := range b.N {
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						for i := w; i < wave; i += workers {
							ch, sock := fmt.Sprintf("private-%d-%d", n, i), fmt.Sprintf("%d.%d", n, i)
							join(b, a, ch, sock, "")
						}
					})
				}
				wg.Wait()
				for w := range workers {
					wg.Go(func() {
						for i := w; i < wave; i += workers {
							a.Leave(testApp, fmt.Sprintf("private-%d-%d", n, i), fmt.Sprintf("%d.%d", n, i))
						}
					})
				}
				wg.Wait()
				// The last operation's channel: a barrier, since the service
				// applies and persists in order.
				last := fmt.Sprintf("private-%d-last", n)
				join(b, a, last, fmt.Sprintf("%d.last", n), "")
				poll.Until(b, 10*time.Second, "the wave persisted", func() bool {
					info, err := r.Channel(ctx, testApp, last)
					return err == nil && info.Occupied
				})
			}
			b.StopTimer()
			ops := float64(b.N * (2*wave + 1))
			b.ReportMetric(float64((cpu()-before).Microseconds())/ops, "cpu-µs/op")
			b.ReportMetric(ops/float64(a.batches.Load()-msgs), "ops/msg")
		})
	}
}
