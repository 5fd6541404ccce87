// Command gateway serves Pusher protocol WebSocket clients and delivers them
// the events of the apps' streams on NATS. Any number of gateways may run
// against the same NATS.
package main

import (
	"context"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/process"
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
	g, err := gateway.Start(ctx, rt, &cfg.Process, cfg.Gateway, apps, rt.Log)
	if err != nil {
		return nil, err
	}
	rt.Log.Info("gateway serving", "gateway_id", g.ID(), "path", cfg.Process.Path+"/app/{key}")
	return g, nil
}
