package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbeddedNATS starts the embedded JetStream server with its store
// under the data directory; HERALD_NATS_LISTEN opens it to other processes.
func startEmbeddedNATS(cfg *config, log *slog.Logger) (*server.Server, error) {
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
			return nil, fmt.Errorf("HERALD_NATS_LISTEN=%q: %w", cfg.NATSListen, err)
		}
		sopts.Host = host
		if sopts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("HERALD_NATS_LISTEN=%q: port: %w", cfg.NATSListen, err)
		}
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("configuring embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS not ready after 30 s (store %s)", sopts.StoreDir)
	}
	log.Info("embedded NATS started", "store", sopts.StoreDir, "listen", cfg.NATSListen)
	return ns, nil
}
