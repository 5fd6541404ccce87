package replay

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
)

// BenchmarkStoredBytes reports what one event costs in the events stream
// (State.Bytes / State.Msgs, file storage) and in the cache stream, for a
// Laravel-like event name and channel and a few data sizes: the figure to
// size an app's replay window with (window × rate × bytes per event, capped
// per channel by ReplayMaxEvents).
func BenchmarkStoredBytes(b *testing.B) {
	const n = 2000
	for _, size := range []int{64, 512, 4096} {
		b.Run("data="+strconv.Itoa(size), func(b *testing.B) {
			e := newEnv(b, appconf.App{})
			if _, err := events.EnsureCacheStream(e.ctx, e.js, e.app, events.StreamOptions{}); err != nil {
				b.Fatal(err)
			}
			data := `{"order":{"id":42,"note":"` + strings.Repeat("x", max(0, size-28)) + `"}}`
			for b.Loop() {
				for i := range n {
					ev := events.Event{AppID: e.app.ID, Channel: "private-orders." + strconv.Itoa(i%50),
						Name: `App\Events\OrderShipped`, Data: data, ExcludeSocketID: "1234567890.42"}
					ack, err := e.js.PublishMsg(e.ctx, ev.Msg())
					if err != nil {
						b.Fatal(err)
					}
					if _, err := e.js.PublishMsg(e.ctx, ev.CacheMsg(ack.Sequence)); err != nil {
						b.Fatal(err)
					}
				}
			}
			perEvent := func(stream string) float64 {
				s, err := e.js.Stream(context.Background(), stream)
				if err != nil {
					b.Fatal(err)
				}
				st := s.CachedInfo().State
				return float64(st.Bytes) / float64(st.Msgs)
			}
			b.ReportMetric(float64(len(data)), "data_B")
			b.ReportMetric(perEvent(names.EventsStream(e.app.ID)), "stored_B/event")
			b.ReportMetric(perEvent(names.CacheStream(e.app.ID)), "cached_B/event")
		})
	}
}
