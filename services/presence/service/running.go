package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/herald-ws/herald/shared/process"
)

// Running is a presence service run by a process: Run keeps going until
// Shutdown, and a failure of it stops the process.
type Running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
}

// Start runs svc.Run in the background until Shutdown; a failure of Run
// stops the process.
func Start(rt *process.Runtime, svc *Service) *Running {
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
