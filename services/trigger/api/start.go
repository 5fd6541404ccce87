package api

import (
	"context"
	"log/slog"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/process"
	"github.com/nats-io/nats.go"
)

// Start connects to NATS as "trigger" (extra adds options, such as an
// in-process server) and builds the API from the process settings and s:
// the one way the trigger binary and herald start theirs. It returns the
// connection too, for the status page.
func Start(ctx context.Context, rt *process.Runtime, set *process.Settings, s Settings, apps *appconf.Registry, log *slog.Logger, extra ...nats.Option) (*API, *nats.Conn, error) {
	nc, err := rt.Connect(ctx, "trigger", extra...)
	if err != nil {
		return nil, nil, err
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
	a, err := New(ctx, opt)
	if err != nil {
		return nil, nil, err
	}
	return a, nc, nil
}
