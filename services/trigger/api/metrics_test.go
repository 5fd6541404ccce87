package api

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRequestMetrics is what a published request costs the metrics:
// its request counter, its app's event counter and the publish duration.
func BenchmarkRequestMetrics(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.published("app1", 1, 800*time.Microsecond)
			m.request(routeEvents, 200)
		}
	})
}
