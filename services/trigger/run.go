package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Shutdown budgets: in-flight requests finish within shutdownTimeout, then
// NATS is drained within drainTimeout.
const (
	startTimeout    = 30 * time.Second
	shutdownTimeout = 10 * time.Second
	drainTimeout    = 5 * time.Second
)

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	start := time.Now()
	appEnv, err := appconf.ParseEnv()
	if err != nil {
		return err
	}
	apps, err := appEnv.Registry()
	if err != nil {
		return fmt.Errorf("app settings: %w", err)
	}

	closed := make(chan struct{})
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("herald-trigger"),
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return fmt.Errorf("connecting to NATS: %w", err)
	}
	defer nc.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	a, err := api.New(startCtx, api.Options{
		Apps:       apps,
		NC:         nc,
		Logger:     log,
		Metrics:    reg,
		PathPrefix: cfg.PathPrefix,
		Stream:     events.StreamOptions{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes},
		// 0 in the setting means no retry; in the options, the default.
		PublishRetryFor: cmp.Or(cfg.PublishRetryFor, -1),
	})
	cancel()
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", a.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	log.Info("trigger API listening", "addr", ln.Addr().String(), "apps", len(apps.All()),
		"nats", nc.ConnectedUrlRedacted(), "path_prefix", cfg.PathPrefix, "startup", time.Since(start).Round(time.Microsecond).String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}

	log.Info("trigger API shutting down")
	shCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP shutdown incomplete", "err", err)
	}
	if err := nc.Drain(); err != nil {
		return fmt.Errorf("draining NATS: %w", err)
	}
	select {
	case <-closed:
	case <-time.After(drainTimeout):
		log.Warn("NATS drain timed out")
	}
	return nil
}
