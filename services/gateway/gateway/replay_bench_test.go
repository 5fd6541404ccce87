package gateway_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/position"
)

// BenchmarkResume1000 measures a resume that replays 1,000 events, end to
// end: from pusher:subscribe to herald:resumed read by a raw WebSocket
// client on loopback (history read, merge, paced writes). The 5 KB case
// goes through a 64 KiB send queue, as in TestReplayIsPaced.
func BenchmarkResume1000(b *testing.B) {
	for _, tc := range []struct {
		size, queue int
	}{{200, 0}, {5000, 64 << 10}, {5000, 0}} {
		name := "data=" + strconv.Itoa(tc.size)
		if tc.queue > 0 {
			name += "/queue=" + strconv.Itoa(tc.queue)
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, func(o *gateway.Options) { o.WriteQueueBytes = tc.queue })
			app := e.app("app-1")
			pad := strings.Repeat("x", tc.size)
			e.storeMany("feed", 1000, func(i int) string { return pad })
			from := position.Position{Epoch: e.epoch()}.String()
			b.ReportAllocs()
			for b.Loop() {
				c := connect(b, e.hs, "key-1")
				c.subscribeWith(app, "feed", map[string]any{"resume": from})
				for {
					f, err := c.tryRead()
					if err != nil {
						b.Fatal(err)
					}
					if f.Event == "herald:resumed" {
						break
					}
				}
				c.c.Close()
			}
		})
	}
}
