package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// connectFunc opens one named NATS connection; every service gets its own.
type connectFunc func(name string) (*nats.Conn, error)

// startNATS joins NATS_URL, or starts the embedded JetStream server with its
// store under the data directory.
func startNATS(cfg config, log *slog.Logger) (connectFunc, func(), error) {
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if cfg.NATSURL != "" {
		return func(name string) (*nats.Conn, error) {
			nc, err := nats.Connect(cfg.NATSURL, append(opts, nats.Name(name))...)
			if err != nil {
				return nil, fmt.Errorf("connecting to NATS_URL %s: %w", cfg.NATSURL, err)
			}
			return nc, nil
		}, func() {}, nil
	}

	sopts := &server.Options{
		ServerName: "herald",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		NoSigs:     true,
		NoLog:      true,
		DontListen: cfg.NATSListen == "",
	}
	if cfg.NATSListen != "" {
		host, port, err := net.SplitHostPort(cfg.NATSListen)
		if err != nil {
			return nil, nil, fmt.Errorf("HERALD_NATS_LISTEN=%q: %w", cfg.NATSListen, err)
		}
		sopts.Host = host
		if sopts.Port, err = strconv.Atoi(port); err != nil {
			return nil, nil, fmt.Errorf("HERALD_NATS_LISTEN=%q: port: %w", cfg.NATSListen, err)
		}
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("embedded NATS not ready after 30 s (store %s)", sopts.StoreDir)
	}
	log.Info("embedded NATS started", "store", sopts.StoreDir, "listen", cfg.NATSListen)
	stop := func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	return func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect("", append(opts, nats.Name(name), nats.InProcessServer(ns))...)
		if err != nil {
			return nil, fmt.Errorf("connecting to embedded NATS: %w", err)
		}
		return nc, nil
	}, stop, nil
}
