package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/logging"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// run starts Herald and blocks until ctx ends, then shuts down in order:
// clients get 4200 (reconnect now), the presence service stops, HTTP stops,
// NATS drains.
func run(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig()
	if err != nil {
		return err
	}
	log, err := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	appconf.WarnForeign(log)
	apps, err := resolveApps(cfg, stdout)
	if err != nil {
		return err
	}

	connect, stopNATS, err := startNATS(cfg, log)
	if err != nil {
		return err
	}
	defer stopNATS()
	gwConn, err := connect("herald-gateway")
	if err != nil {
		return err
	}
	defer gwConn.Close()
	apiConn, err := connect("herald-trigger")
	if err != nil {
		return err
	}
	defer apiConn.Close()
	presenceConn, err := connect("herald-presence")
	if err != nil {
		return err
	}
	defer presenceConn.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stream := events.StreamOptions{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes}

	// Presence first, so that the gateway's first presence subscribes find
	// it (gateways also wait for one that starts later).
	stopPresence, err := startPresence(cfg, presenceConn, apps, log.With("service", "presence"), reg)
	if err != nil {
		return err
	}
	defer stopPresence()

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	gw, err := gateway.New(startCtx, gateway.Options{
		Apps:            apps,
		NC:              gwConn,
		Logger:          log.With("service", "gateway"),
		Metrics:         reg,
		PathPrefix:      cfg.Path,
		Stream:          stream,
		WriteQueueBytes: cfg.WriteQueueBytes,
		WriteTimeout:    cfg.WriteTimeout,
		GatewayTTL:      cfg.GatewayTTL,
		PresenceTimeout: cfg.PresenceTimeout,
		LogConnections:  cfg.LogConnections,
		LogPayloads:     cfg.LogPayloads,
	})
	if err != nil {
		return fmt.Errorf("starting gateway: %w", err)
	}
	gwConn.SetReconnectHandler(func(*nats.Conn) { gw.Reconnected() })
	httpAPI, err := api.New(startCtx, api.Options{
		Apps:       apps,
		NC:         apiConn,
		Logger:     log.With("service", "trigger"),
		Metrics:    reg,
		PathPrefix: cfg.Path,
		Stream:     stream,
		// 0 in the setting means no retry; in the options, the default.
		PublishRetryFor: cmp.Or(cfg.PublishRetryFor, -1),
	})
	if err != nil {
		return fmt.Errorf("starting HTTP API: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle(cfg.Path+"/app/", gw.Handler())
	apiHandler := httpAPI.Handler()
	mux.Handle(cfg.Path+"/apps/", apiHandler)
	mux.Handle("/up", apiHandler)
	if cfg.Path != "" {
		mux.Handle(cfg.Path+"/up", apiHandler)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (REVERB_SERVER_HOST/REVERB_SERVER_PORT): %w", addr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("herald started", "addr", ln.Addr().String(), "gateway_id", gw.ID(), "apps", len(apps.All()),
		"websocket", cfg.Path+"/app/{key}", "api", cfg.Path+"/apps/{id}")

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	}

	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer scancel()
	var errs []error
	if err := gw.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shutting down gateway: %w", err))
	}
	// After the gateway drained: its leaves wait in the operations stream
	// for the next start if this instance does not apply them first.
	if err := stopPresence(); err != nil {
		errs = append(errs, err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shutting down HTTP: %w", err))
	}
	for _, nc := range []*nats.Conn{gwConn, apiConn, presenceConn} {
		if err := drain(sctx, nc); err != nil {
			errs = append(errs, err)
		}
	}
	log.Info("stopped")
	return errors.Join(errs...)
}

// drain flushes a NATS connection's pending work, bounded by ctx.
func drain(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return fmt.Errorf("draining NATS connection %s: %w", nc.Opts.Name, err)
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return fmt.Errorf("draining NATS connection %s: %w", nc.Opts.Name, ctx.Err())
	}
}
