package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/services/trigger/statuspage"
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
	var gw atomic.Pointer[gateway.Gateway]
	gwConn, err := rt.Connect(ctx, "gateway", append(extra, nats.ReconnectHandler(func(*nats.Conn) {
		if g := gw.Load(); g != nil {
			g.Reconnected()
		}
	}))...)
	if err != nil {
		return nil, err
	}
	apiConn, err := rt.Connect(ctx, "trigger", extra...)
	if err != nil {
		return nil, err
	}
	presenceConn, err := rt.Connect(ctx, "presence", extra...)
	if err != nil {
		return nil, err
	}
	stream := cfg.Process.Stream()

	// Presence first, so that the gateway's first presence subscribes find
	// it (gateways also wait for one that starts later).
	popt := service.Options{
		NC:      presenceConn,
		Apps:    apps,
		Logger:  rt.Log.With("service", "presence"),
		Metrics: rt.Metrics,
		Infra:   cfg.Process.Presence(),
	}
	cfg.Presence.Apply(&popt)
	psvc, err := service.New(popt)
	if err != nil {
		return nil, fmt.Errorf("starting presence: %w", err)
	}
	h := &herald{presence: service.Start(rt, psvc)}

	gopt := gateway.Options{
		Apps:       apps,
		NC:         gwConn,
		Logger:     rt.Log.With("service", "gateway"),
		Metrics:    rt.Metrics,
		PathPrefix: cfg.Process.Path,
		Stream:     stream,
	}
	cfg.Gateway.Apply(&gopt)
	gopt.LogPayloads = cfg.Process.LogPayloads
	if h.gateway, err = gateway.New(ctx, gopt); err != nil {
		return nil, errors.Join(fmt.Errorf("starting gateway: %w", err), h.presence.Shutdown(context.Background()))
	}
	gw.Store(h.gateway)
	aopt := api.Options{
		Apps:       apps,
		NC:         apiConn,
		Logger:     rt.Log.With("service", "trigger"),
		Metrics:    rt.Metrics,
		PathPrefix: cfg.Process.Path,
		Stream:     stream,
	}
	cfg.API.Apply(&aopt)
	httpAPI, err := api.New(ctx, aopt)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("starting HTTP API: %w", err), h.Shutdown(context.Background()))
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Process.Path+"/app/", h.gateway.Handler())
	mux.Handle(cfg.Process.Path+"/apps/", httpAPI.Handler())
	sopt := statuspage.Options{NC: apiConn, Apps: apps, PathPrefix: cfg.Process.Path,
		Replicas: cfg.Process.StreamReplicas, Logger: rt.Log.With("service", "status"), Payloads: cfg.Process.LogPayloads}
	if err := cfg.Status.Mount(ctx, mux, sopt, rt.AtExit); err != nil {
		return nil, errors.Join(fmt.Errorf("starting the status page: %w", err), h.Shutdown(context.Background()))
	}
	h.handler = mux
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
