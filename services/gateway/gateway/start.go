package gateway

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/process"
	"github.com/nats-io/nats.go"
)

// Start connects to NATS as "gateway" (extra adds options, such as an
// in-process server) and builds a gateway from the process settings and s:
// the one way the gateway binary and herald start theirs.
func Start(ctx context.Context, rt *process.Runtime, set *process.Settings, s Settings, apps *appconf.Registry, log *slog.Logger, extra ...nats.Option) (*Gateway, error) {
	// The gateway exists only after the connection does; the reconnect
	// handler finds it here.
	var gw atomic.Pointer[Gateway]
	nc, err := rt.Connect(ctx, "gateway", slices.Concat(extra, []nats.Option{nats.ReconnectHandler(func(c *nats.Conn) {
		log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		if g := gw.Load(); g != nil {
			g.Reconnected()
		}
	})})...)
	if err != nil {
		return nil, err
	}
	opt := Options{
		Apps:       apps,
		NC:         nc,
		Logger:     log,
		Metrics:    rt.Metrics,
		PathPrefix: set.Path,
		Stream:     set.Stream(),
	}
	s.Apply(&opt)
	opt.LogPayloads = set.LogPayloads
	g, err := New(ctx, opt)
	if err != nil {
		return nil, err
	}
	gw.Store(g)
	return g, nil
}
