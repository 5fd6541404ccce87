// Package process is the one way a Herald binary starts and stops: process
// settings, logging, signals, NATS connections that wait for NATS, the
// HTTP listeners with their timeouts, /up and /ready, /metrics and pprof,
// the commands every binary has (health, version), and the shutdown within
// HERALD_SHUTDOWN_TIMEOUT.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/logging"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Program describes one binary. T is its settings struct, read with Parse.
type Program[T any] struct {
	// Name is the binary's name: "gateway", "trigger", "presence", "herald".
	Name string
	// Summary is the first line of -h.
	Summary string
	// Settings returns the process settings held by a T.
	Settings func(*T) *Settings
	// Addr returns the public listen address (host:port) of a T.
	Addr func(*T) string
	// Start builds the service once the listeners are up. It may wait (for
	// NATS, streams and buckets: Runtime.Connect and package ensure wait
	// until ctx ends); until it returns, /ready answers 503 and other
	// requests 503 too.
	Start func(ctx context.Context, rt *Runtime, cfg *T) (Service, error)
	// Commands are the binary's own commands besides health and version.
	Commands []Command
}

// Service is what Program.Start built.
type Service interface {
	// Handler serves everything on the public port but /up, /ready and
	// /metrics.
	Handler() http.Handler
	// Shutdown stops the service (closes its clients, hands over what it
	// holds) within ctx. The listeners and NATS connections are closed
	// after it by Run.
	Shutdown(ctx context.Context) error
}

// Readier is a Service that can be not ready while it runs; /ready reports
// its error.
type Readier interface{ Ready() error }

// Runtime is what a starting service gets from the process.
type Runtime struct {
	Log *slog.Logger
	// Metrics is the process's registry, served at /metrics.
	Metrics *prometheus.Registry
	// Stdout is where commands and first-start notices print.
	Stdout io.Writer

	settings *Settings
	name     string
	conns    conns
	failed   chan error
	atExit   []func()
}

// AtExit runs f when the process stops, after its NATS connections were
// drained (last registered, first run): for what they depend on, such as
// an embedded NATS server.
func (rt *Runtime) AtExit(f func()) { rt.atExit = append(rt.atExit, f) }

// Connect opens a NATS connection named "herald-<name>" to NATS_URL (extra
// options may replace the URL, e.g. nats.InProcessServer) and waits until
// it is connected, logging what it waits for, until ctx ends. The process
// drains it at shutdown and counts it in /ready.
func (rt *Runtime) Connect(ctx context.Context, name string, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := rt.settings.NATS.Options(rt.Log)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name("herald-"+name))
	opts = append(opts, extra...)
	nc, err := connect(ctx, rt.Log, rt.settings.NATS.URL, opts)
	if err != nil {
		return nil, err
	}
	rt.conns.add(nc)
	return nc, nil
}

// Fail stops the process with err, as a service does when a part of it
// that must run stopped.
func (rt *Runtime) Fail(err error) {
	select {
	case rt.failed <- err:
	default:
	}
}

// Main runs the program with os.Args and exits: 0 after a clean stop, 1
// after an error (printed as "<name>: <error>"), 2 for bad usage.
func Main[T any](p Program[T]) {
	os.Exit(p.Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the program with args and returns the exit code.
func (p Program[T]) Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		cmd, ok := p.command(args[0])
		if !ok {
			fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
			p.usage(stderr)
			return 2
		}
		if cmd.Name == "" { // -h
			p.usage(stdout)
			return 0
		}
		return cmd.Run(args[1:], stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 1
	}
	return 0
}

// Run reads the settings, serves, and stops when ctx ends, within
// HERALD_SHUTDOWN_TIMEOUT. It returns nil after a clean stop; every error
// of the stop otherwise, joined.
func (p Program[T]) Run(ctx context.Context, stdout, stderr io.Writer) error {
	start := time.Now()
	cfg, err := Parse[T]()
	if err != nil {
		return err
	}
	set := p.Settings(&cfg)
	log, err := logging.New(stderr, set.LogLevel, set.LogFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	appconf.WarnForeign(log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(p.Name))
	rt := &Runtime{Log: log, Metrics: reg, Stdout: stdout, settings: set, name: p.Name, failed: make(chan error, 1)}
	defer rt.conns.closeAll()

	st := &state{}
	lis, err := listen(p.Addr(&cfg), set, rt, st)
	if err != nil {
		return err
	}
	serveErr := lis.serve(log)
	log.Info(p.Name+" listening", "addr", lis.public.Addr().String(), "metrics", lis.metricsAddr(), "pprof", lis.pprofAddr())

	svc, err := p.Start(ctx, rt, &cfg)
	if err != nil {
		if ctx.Err() != nil { // stopped while starting: a clean stop
			log.Info("stopped while starting", "err", err)
			return p.stop(rt, lis, st, nil, set.ShutdownTimeout)
		}
		return errors.Join(fmt.Errorf("starting: %w", err), p.stop(rt, lis, st, nil, set.ShutdownTimeout))
	}
	st.service.Store(&svc)
	log.Info(p.Name+" ready", "startup", time.Since(start).Round(time.Millisecond).String())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("serving HTTP: %w", err)
	case err := <-rt.failed:
		runErr = err
	}
	return errors.Join(runErr, p.stop(rt, lis, st, svc, set.ShutdownTimeout))
}

// stop drains within timeout: /ready turns 503, the service stops, then
// the HTTP listeners, then NATS.
func (p Program[T]) stop(rt *Runtime, lis *listeners, st *state, svc Service, timeout time.Duration) error {
	rt.Log.Info("shutting down", "timeout", timeout.String())
	st.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if svc != nil {
		if err := svc.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", p.Name, err))
		}
	}
	errs = append(errs, lis.shutdown(ctx))
	errs = append(errs, rt.conns.drain(ctx))
	for i := len(rt.atExit) - 1; i >= 0; i-- {
		rt.atExit[i]()
	}
	err := errors.Join(errs...)
	if err != nil {
		rt.Log.Error("stopped with errors", "err", err)
		return fmt.Errorf("shutdown: %w", err)
	}
	rt.Log.Info("stopped")
	return nil
}

// state is what /ready reads.
type state struct {
	service  atomic.Pointer[Service]
	draining atomic.Bool
}

// ready is nil when the process serves: started, NATS connected, not
// draining, and the service ready by its own account.
func (st *state) ready(c *conns) (string, error) {
	switch {
	case st.draining.Load():
		return "draining", errors.New("draining")
	case st.service.Load() == nil:
		return "starting", errors.New("starting: waiting for NATS, streams and buckets")
	}
	if err := c.connected(); err != nil {
		return "nats disconnected", err
	}
	if r, ok := (*st.service.Load()).(Readier); ok {
		if err := r.Ready(); err != nil {
			return "not ready", err
		}
	}
	return "ok", nil
}

// listenAddr is net.Listen with the setting's name in the error.
func listenAddr(addr, setting string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (%s): %w", addr, setting, err)
	}
	return ln, nil
}
