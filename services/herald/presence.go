package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// startPresence runs the presence service, the single writer of global
// channel state, on its own connection. The returned function stops it
// (handing its lock over) and reports how it ended; calling it again does
// nothing.
func startPresence(cfg config, nc *nats.Conn, apps *appconf.Registry, log *slog.Logger,
	reg prometheus.Registerer) (func() error, error) {
	svc, err := service.New(service.Options{
		NC:            nc,
		Apps:          apps,
		Logger:        log,
		Metrics:       reg,
		Infra:         presence.Options{Replicas: cfg.StreamReplicas},
		DrainGrace:    cfg.PresenceDrainGrace,
		LockTTL:       cfg.PresenceLockTTL,
		FlushInterval: cfg.PresenceFlushInterval,

		WebhookRetryFor: cfg.WebhookRetryFor,
		WebhookTimeout:  cfg.WebhookTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("starting presence: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	var runErr error
	return func() error {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				runErr = fmt.Errorf("presence service: %w", err)
			}
		})
		return runErr
	}, nil
}
