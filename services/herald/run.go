package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/process"
	"github.com/nats-io/nats.go"
)

// start runs the presence service, the gateway and the HTTP API, each on
// its own NATS connection, to NATS_URL or to the embedded server.
func start(ctx context.Context, rt *process.Runtime, cfg *config) (process.Service, error) {
	apps, err := resolveApps(cfg, rt.Stdout, rt.Log)
	if err != nil {
		return nil, err
	}
	var extra []nats.Option
	if cfg.Process.NATS.URL == "" {
		ns, err := startEmbeddedNATS(cfg, rt.Log)
		if err != nil {
			return nil, err
		}
		rt.AtExit(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		extra = append(extra, nats.InProcessServer(ns))
	}
	// Presence first, so that the gateway's first presence subscribes find
	// it (gateways also wait for one that starts later).
	h := &herald{}
	if h.presence, err = service.Start(ctx, rt, &cfg.Process, cfg.Presence, apps, rt.Log.With("service", "presence"), extra...); err != nil {
		return nil, fmt.Errorf("starting presence: %w", err)
	}
	if h.gateway, err = gateway.Start(ctx, rt, &cfg.Process, cfg.Gateway, apps, rt.Log.With("service", "gateway"), extra...); err != nil {
		return nil, errors.Join(fmt.Errorf("starting gateway: %w", err), h.presence.Shutdown(context.Background()))
	}
	httpAPI, apiConn, err := api.Start(ctx, rt, &cfg.Process, cfg.API, apps, rt.Log.With("service", "trigger"), extra...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("starting HTTP API: %w", err), h.Shutdown(context.Background()))
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Process.Path+"/app/", h.gateway.Handler())
	mux.Handle(cfg.Process.Path+"/apps/", httpAPI.Handler())
	if err := cfg.Status.Mount(ctx, mux, rt, &cfg.Process, apiConn, apps, rt.Log.With("service", "status")); err != nil {
		return nil, errors.Join(fmt.Errorf("starting the status page: %w", err), h.Shutdown(context.Background()))
	}
	h.handler = httpAPI.Route(mux)
	rt.Log.Info("herald serving", "gateway_id", h.gateway.ID(), "apps", len(apps.All()),
		"websocket", cfg.Process.Path+"/app/{key}", "api", cfg.Process.Path+"/apps/{id}")
	return h, nil
}

// herald is the three services in one process.
type herald struct {
	gateway  *gateway.Gateway
	presence *service.Running
	handler  http.Handler
}

func (h *herald) Handler() http.Handler { return h.handler }

func (h *herald) Ready() error { return h.presence.Ready() }

// Shutdown tells clients 4200 (reconnect now), then stops the presence
// service: after the gateway drained, so that its leaves wait in the
// operations stream for the next start if this instance does not apply
// them first.
func (h *herald) Shutdown(ctx context.Context) error {
	var errs []error
	if h.gateway != nil {
		if err := h.gateway.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
		}
	}
	if err := h.presence.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("presence: %w", err))
	}
	return errors.Join(errs...)
}
