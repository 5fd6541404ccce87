// Command gateway serves Pusher protocol WebSocket clients and delivers them
// the events of the apps' streams on NATS. Any number of gateways may run
// against the same NATS.
package main

import (
	"context"
	"sync/atomic"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/process"
	"github.com/nats-io/nats.go"
)

func main() { process.Main(program) }

var program = process.Program[config]{
	Name:     "gateway",
	Summary:  "serves Pusher protocol WebSocket clients at /app/{key}, from the apps' streams on NATS",
	Settings: func(c *config) *process.Settings { return &c.Process },
	Addr:     func(c *config) string { return c.Server.Addr() },
	Start:    start,
}

func start(ctx context.Context, rt *process.Runtime, cfg *config) (process.Service, error) {
	apps, err := process.Apps()
	if err != nil {
		return nil, err
	}
	// The gateway exists only after the connection does; the reconnect
	// handler finds it here.
	var gw atomic.Pointer[gateway.Gateway]
	nc, err := rt.Connect(ctx, "gateway", nats.ReconnectHandler(func(c *nats.Conn) {
		rt.Log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted())
		if g := gw.Load(); g != nil {
			g.Reconnected()
		}
	}))
	if err != nil {
		return nil, err
	}
	opt := gateway.Options{
		Apps:       apps,
		NC:         nc,
		Logger:     rt.Log,
		Metrics:    rt.Metrics,
		PathPrefix: cfg.Process.Path,
		Stream:     cfg.Process.Stream(),
	}
	cfg.Gateway.Apply(&opt)
	opt.LogPayloads = cfg.Process.LogPayloads
	g, err := gateway.New(ctx, opt)
	if err != nil {
		return nil, err
	}
	gw.Store(g)
	rt.Log.Info("gateway serving", "gateway_id", g.ID(), "path", cfg.Process.Path+"/app/{key}")
	return g, nil
}
