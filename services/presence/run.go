package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/logging"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// run starts the service and blocks until ctx ends, then hands the lock
// over, stops HTTP and drains NATS.
func run(ctx context.Context) error {
	cfg, err := parseConfig()
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	appconf.WarnForeign(log)
	appEnv, err := appconf.ParseEnv()
	if err != nil {
		return err
	}
	var apps *appconf.Registry
	if appEnv.HasApp() {
		if apps, err = appEnv.Registry(); err != nil {
			return err
		}
	} else {
		log.Info("no app configured: default presence limits apply to every app")
	}

	nc, err := nats.Connect(cfg.NATSURL, nats.Name("herald-presence"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connecting to NATS_URL %s: %w", cfg.NATSURL, err)
	}
	defer nc.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := service.New(service.Options{
		NC:            nc,
		Apps:          apps,
		Logger:        log,
		Metrics:       reg,
		Infra:         presence.Options{Replicas: cfg.StreamReplicas},
		DrainGrace:    cfg.DrainGrace,
		LockTTL:       cfg.LockTTL,
		FlushInterval: cfg.FlushInterval,

		WebhookRetryFor: cfg.WebhookRetryFor,
		WebhookTimeout:  cfg.WebhookTimeout,
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/up", svc.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (HERALD_PRESENCE_HOST/HERALD_PRESENCE_PORT): %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	svcCtx, stopSvc := context.WithCancel(context.Background())
	defer stopSvc()
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(svcCtx) }()
	log.Info("presence started", "addr", ln.Addr().String(), "instance", svc.Instance())

	var errs []error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		errs = append(errs, fmt.Errorf("serving HTTP: %w", err))
	case err := <-runErr:
		runErr <- err
		errs = append(errs, fmt.Errorf("presence service stopped: %w", err))
	}

	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	stopSvc()
	select {
	case err := <-runErr:
		if err != nil {
			errs = append(errs, err)
		}
	case <-sctx.Done():
		errs = append(errs, errors.New("presence service did not stop in time"))
	}
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shutting down HTTP: %w", err))
	}
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("draining NATS: %w", err))
	}
	log.Info("stopped")
	return errors.Join(errs...)
}
