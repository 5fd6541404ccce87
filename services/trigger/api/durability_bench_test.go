package api_test

import (
	"testing"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// BenchmarkPublishDurability is BenchmarkPublish's request against a
// 3-node cluster with the stream at R3, its nodes with NATS's default
// flush (sync_interval 2 minutes: acknowledged writes may sit in the page
// cache) and with sync_interval: always (every write fsynced before it is
// acknowledged), in one run so the two can be compared as a ratio.
func BenchmarkPublishDurability(b *testing.B) {
	if testing.Short() {
		b.Skip("starts 3-node clusters")
	}
	for _, tc := range []struct {
		name   string
		always bool
	}{{"sync_interval=default", false}, {"sync_interval=always", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cluster := natstest.NewCluster(b, 3, func(o *server.Options) { o.SyncAlways = tc.always })
			nc, err := nats.Connect(cluster.URLs())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			a := startAPI(b, nc, testApps, api.Options{Stream: events.StreamOptions{Replicas: 3}})
			benchServe(b, a.Handler(), "/apps/app1/events", benchEvent)
		})
	}
}
