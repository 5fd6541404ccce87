// Command presence runs Herald's presence service on its own: the single
// writer of global channel state (subscriptions, presence members, counts)
// for a split deployment. Run two for failover: one is active, the other
// takes over within the lock TTL.
package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/process"
)

func main() { process.Main(program) }

var program = process.Program[config]{
	Name:     "presence",
	Summary:  "keeps the global channel state (presence members, occupancy, counts) and sends webhooks",
	Settings: func(c *config) *process.Settings { return &c.Process },
	Addr:     func(c *config) string { return process.JoinHostPort(c.Host, c.Port) },
	Start:    start,
}

// config is every setting of the presence binary. App settings (limits,
// webhooks) are read by appconf.
type config struct {
	Process  process.Settings
	Presence service.Settings

	// Host and Port serve /up, /ready, /status and /metrics.
	Host string `env:"HERALD_PRESENCE_HOST" envDefault:"0.0.0.0"`
	Port int    `env:"HERALD_PRESENCE_PORT" envDefault:"8082"`
}

// Check validates what only the presence binary reads.
func (c *config) Check() error {
	return errors.Join(process.CheckPort("HERALD_PRESENCE_PORT", c.Port), c.Process.NATS.RequireNATS())
}

func start(ctx context.Context, rt *process.Runtime, cfg *config) (process.Service, error) {
	appEnv, err := appconf.ParseEnv()
	if err != nil {
		return nil, err
	}
	var apps *appconf.Registry
	if appEnv.HasApp() {
		if apps, err = appEnv.Registry(); err != nil {
			return nil, fmt.Errorf("app settings: %w", err)
		}
	} else {
		rt.Log.Info("no app configured: default presence limits apply to every app")
	}
	return service.Start(ctx, rt, &cfg.Process, cfg.Presence, apps, rt.Log)
}
