package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/herald-ws/herald/shared/ensure"
	"github.com/nats-io/nats.go"
)

// waitLogEvery spaces the "waiting for NATS" lines.
const waitLogEvery = 5 * time.Second

// Options returns the nats.go options of these settings: credentials, TLS,
// reconnects forever with ensure.Backoff, both at the start (NATS not up
// yet) and after a connection is lost (once every server of NATS_URL was
// tried), and logging of disconnects.
func (n NATS) Options(log *slog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(ensure.Backoff.Wait),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if err != nil { // nil: closed on purpose
				log.Warn("NATS disconnected", "conn", c.Opts.Name, "err", err)
			}
		}),
		nats.ErrorHandler(func(c *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", "conn", c.Opts.Name, "err", err)
		}),
	}
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(n.NKey)
		if err != nil {
			return nil, fmt.Errorf("HERALD_NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts, nil
}

// conns are the NATS connections a process opened, for readiness and the
// drain at shutdown.
type conns struct {
	mu  sync.Mutex
	all []*nats.Conn
}

func (c *conns) add(nc *nats.Conn) {
	c.mu.Lock()
	c.all = append(c.all, nc)
	c.mu.Unlock()
}

func (c *conns) list() []*nats.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*nats.Conn(nil), c.all...)
}

// connected is nil when every connection is up, else names one that is not.
func (c *conns) connected() error {
	for _, nc := range c.list() {
		if !nc.IsConnected() {
			return fmt.Errorf("NATS connection %s is %s", nc.Opts.Name, nc.Status())
		}
	}
	return nil
}

// drain lets every connection's in-flight messages through, then closes
// it, bounded by ctx.
func (c *conns) drain(ctx context.Context) error {
	var errs []error
	for _, nc := range c.list() {
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("draining NATS connection %s: %w", nc.Opts.Name, err))
			nc.Close()
		}
	}
	for _, nc := range c.list() {
		for !nc.IsClosed() {
			select {
			case <-ctx.Done():
				nc.Close()
				errs = append(errs, fmt.Errorf("draining NATS connection %s: %w", nc.Opts.Name, ctx.Err()))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return errors.Join(errs...)
}

// closeAll closes every connection at once.
func (c *conns) closeAll() {
	for _, nc := range c.list() {
		nc.Close()
	}
}

// connect opens a named connection and waits until it is connected,
// logging what it waits for, until ctx ends.
func connect(ctx context.Context, log *slog.Logger, url string, opts []nats.Option) (*nats.Conn, error) {
	var mu sync.Mutex
	var lastErr error
	opts = append(opts, nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
		mu.Lock()
		lastErr = err
		mu.Unlock()
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	start := time.Now()
	next := start.Add(waitLogEvery)
	logged := false
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("waiting for NATS: %w", ctx.Err())
		case now := <-tick.C:
			mu.Lock()
			err := lastErr
			mu.Unlock()
			// The first failed attempt is logged at once, then a line
			// every waitLogEvery.
			if (logged || err == nil) && now.Before(next) {
				continue
			}
			logged, next = true, now.Add(waitLogEvery)
			log.Warn("waiting for NATS", "conn", nc.Opts.Name, "url", redact(url), "waited", now.Sub(start).Round(time.Second).String(), "err", err)
		}
	}
	if logged {
		log.Info("NATS connected after waiting", "conn", nc.Opts.Name, "url", nc.ConnectedUrlRedacted())
	}
	return nc, nil
}

// redact hides a password or token in a NATS URL list for the logs.
func redact(urls string) string {
	if urls == "" {
		return nats.DefaultURL
	}
	return redactRE.ReplaceAllString(urls, "://***@")
}

var redactRE = regexp.MustCompile(`://[^@/,]*@`)
