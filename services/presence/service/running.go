package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/process"
	"github.com/nats-io/nats.go"
)

// Running is a presence service run by a process: Run keeps going until
// Shutdown, and a failure of it stops the process.
type Running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
}

// Start connects to NATS as "presence" (extra adds options, such as an
// in-process server), builds the service from the process settings and s,
// and runs it in the background until Shutdown; a failure of Run stops the
// process. It is the one way the presence binary and herald start theirs.
func Start(ctx context.Context, rt *process.Runtime, set *process.Settings, s Settings, apps *appconf.Registry, log *slog.Logger, extra ...nats.Option) (*Running, error) {
	nc, err := rt.Connect(ctx, "presence", extra...)
	if err != nil {
		return nil, err
	}
	opt := Options{
		NC:      nc,
		Apps:    apps,
		Logger:  log,
		Metrics: rt.Metrics,
		Infra:   set.Presence(),
	}
	s.Apply(&opt)
	svc, err := New(opt)
	if err != nil {
		return nil, err
	}
	return runInBackground(rt, svc), nil
}

// runInBackground runs svc.Run until Shutdown; a failure of Run stops the
// process.
func runInBackground(rt *process.Runtime, svc *Service) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := svc.Run(ctx)
		if err != nil {
			rt.Fail(fmt.Errorf("presence service stopped: %w", err))
		}
		r.done <- err
	}()
	rt.Log.Info("presence service started", "instance", svc.Instance())
	return r
}

// Handler serves GET /status: this instance's role.
func (r *Running) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /status", r.svc.Handler())
	return mux
}

// Ready is the service's: its streams and buckets are ensured.
func (r *Running) Ready() error { return r.svc.Ready() }

// Shutdown stops the service, handing its lock over, within ctx.
func (r *Running) Shutdown(ctx context.Context) error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // a second Shutdown sees the same result
		return err
	case <-ctx.Done():
		return errors.New("presence service did not stop in time")
	}
}
