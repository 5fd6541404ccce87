// Command trigger serves Herald's HTTP API (Pusher's REST API): it checks
// signed publish requests and stores their events in NATS JetStream.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/services/trigger/statuspage"
	"github.com/herald-ws/herald/shared/process"
)

func main() { process.Main(program) }

var program = process.Program[config]{
	Name:     "trigger",
	Summary:  "serves the Pusher HTTP API (/apps/{id}/events, …) and stores events in NATS JetStream",
	Settings: func(c *config) *process.Settings { return &c.Process },
	Addr:     func(c *config) string { return process.JoinHostPort(c.Host, c.port()) },
	Start:    start,
}

// config is every setting of the trigger binary. App settings are read by
// appconf.
type config struct {
	Process process.Settings
	API     api.Settings
	Status  statuspage.Settings

	Host string `env:"HERALD_TRIGGER_HOST" envDefault:"0.0.0.0"`
	// Port is HERALD_TRIGGER_PORT; unset, PORT (which Cloud Run, Fly and
	// Heroku set), else 8081.
	Port         *int `env:"HERALD_TRIGGER_PORT"`
	PlatformPort *int `env:"PORT"`
}

// defaultPort is the trigger's port when neither HERALD_TRIGGER_PORT nor
// PORT is set.
const defaultPort = 8081

func (c *config) port() int {
	switch {
	case c.Port != nil:
		return *c.Port
	case c.PlatformPort != nil:
		return *c.PlatformPort
	}
	return defaultPort
}

// Check validates what only the trigger binary reads.
func (c *config) Check() error {
	name := "HERALD_TRIGGER_PORT"
	if c.Port == nil && c.PlatformPort != nil {
		name = "PORT"
	}
	return errors.Join(process.CheckPort(name, c.port()), c.Process.NATS.RequireNATS())
}

func start(ctx context.Context, rt *process.Runtime, cfg *config) (process.Service, error) {
	apps, err := process.Apps()
	if err != nil {
		return nil, err
	}
	a, nc, err := api.Start(ctx, rt, &cfg.Process, cfg.API, apps, rt.Log)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler())
	if err := cfg.Status.Mount(ctx, mux, rt, &cfg.Process, nc, apps, rt.Log); err != nil {
		return nil, fmt.Errorf("starting the status page: %w", err)
	}
	rt.Log.Info("trigger API serving", "apps", len(apps.All()), "nats", nc.ConnectedUrlRedacted(), "path", cfg.Process.Path+"/apps/{id}")
	return service{a.Route(mux)}, nil
}

// service is the API as the process runs it: requests in flight finish
// when the process stops HTTP, so there is nothing more to stop.
type service struct{ handler http.Handler }

func (s service) Handler() http.Handler          { return s.handler }
func (s service) Shutdown(context.Context) error { return nil }
