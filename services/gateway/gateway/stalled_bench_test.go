package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
)

// BenchmarkStalledClient measures the delivery latency of 1,000 clients that
// read, with and without one more client on the channel that never reads:
// 100 events of 1 KB at 20 a second, each stamped with its publish time.
// It reports the readers' p50 and p99 (ms); the stalled client must not
// move them. Run with -benchtime=1x (BENCHMARKS.md).
func BenchmarkStalledClient(b *testing.B) {
	for _, stalled := range []int{0, 1} {
		b.Run(fmt.Sprintf("stalled=%d", stalled), func(b *testing.B) {
			for range b.N {
				p50, p99 := stalledRun(b, 1000, stalled, 100, 20)
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p99, "p99-ms")
			}
		})
	}
}

func stalledRun(b *testing.B, readers, stalled, events int, rate float64) (p50, p99 float64) {
	e := newEnv(b)
	app := e.app("app-1")
	const ch = "stalled-bench"
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	subscribe := func(c *websocket.Conn) {
		_, _, _ = c.ReadMessage()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:subscribe","data":{"channel":"`+ch+`"}}`))
		if _, m, err := c.ReadMessage(); err != nil || !strings.Contains(string(m), "subscription_succeeded") {
			b.Fatalf("subscribe: %q %v", m, err)
		}
	}
	for range readers {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(e.hs, "/app/key-1"+query), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		subscribe(c)
		wg.Go(func() {
			mine := make([]time.Duration, 0, events)
			for len(mine) < events {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, m, err := c.ReadMessage()
				if err != nil {
					break
				}
				var f struct {
					Data string `json:"data"`
				}
				if json.Unmarshal(m, &f) != nil {
					continue
				}
				sent, err := strconv.ParseInt(f.Data[:strings.IndexByte(f.Data+" ", ' ')], 10, 64)
				if err != nil {
					continue
				}
				mine = append(mine, time.Since(time.Unix(0, sent)))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	for range stalled {
		c, _, err := d.Dial(wsURL(e.hs, "/app/key-1"+query), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		subscribe(c) // and never read again
	}
	pad := " " + strings.Repeat("x", 1000)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	for range events {
		<-tick.C
		m := nats.NewMsg(names.LiveSubject(app.ID, ch))
		m.Header.Set(names.HeaderEvent, "e")
		m.Data = []byte(strconv.FormatInt(time.Now().UnixNano(), 10) + pad)
		if err := e.nc.PublishMsg(m); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	wg.Wait()
	if len(lat) < readers*events {
		b.Fatalf("%d of %d deliveries", len(lat), readers*events)
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	return ms(0.50), ms(0.99)
}
