// Command gateway serves Pusher protocol WebSocket clients and delivers them
// the events of the apps' streams on NATS. Any number of gateways may run
// against the same NATS.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/logging"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownTimeout bounds the drain after SIGINT or SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

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
	apps, err := appEnv.Registry()
	if err != nil {
		return fmt.Errorf("app settings: %w", err)
	}

	// The gateway exists only after the connection does; the reconnect
	// handler finds it here.
	var gw atomic.Pointer[gateway.Gateway]
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("herald-gateway"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed on purpose
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
			if g := gw.Load(); g != nil {
				g.Reconnected()
			}
		}))
	if err != nil {
		return fmt.Errorf("connecting to NATS: %w", err)
	}
	defer nc.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	g, err := gateway.New(startCtx, gateway.Options{
		Apps:            apps,
		NC:              nc,
		Logger:          log,
		Metrics:         reg,
		PathPrefix:      cfg.Path,
		Stream:          events.StreamOptions{Replicas: cfg.StreamReplicas, MaxBytes: cfg.StreamMaxBytes},
		WriteQueueBytes: cfg.WriteQueueBytes,
		WriteTimeout:    cfg.WriteTimeout,
		GatewayTTL:      cfg.GatewayTTL,
		PresenceTimeout: cfg.PresenceTimeout,
		LogConnections:  cfg.LogConnections,
		LogPayloads:     cfg.LogPayloads,
	})
	cancel()
	if err != nil {
		return err
	}
	gw.Store(g)

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/", g.Handler())
	mux.HandleFunc("GET /up", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"draining"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("gateway listening", "addr", ln.Addr().String(), "gateway_id", g.ID(), "path", cfg.Path+"/app/{key}")

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "gateway_id", g.ID())
	draining.Store(true)
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	if err := g.Shutdown(sctx); err != nil {
		log.Warn("connections left at the shutdown deadline", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if err := drainNATS(sctx, nc); err != nil {
		log.Warn("nats drain", "err", err)
	}
	return nil
}

// drainNATS lets in-flight NATS messages through, then closes the connection.
func drainNATS(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		return err
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
