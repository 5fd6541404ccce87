// Package events defines how channel events live on the bus: the shape of an
// app's events stream and the message that carries one event.
package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions are the installation-wide settings of events streams.
type StreamOptions struct {
	// Replicas is 1 on a single NATS server, 3 on a cluster.
	Replicas int
	// MaxBytes caps one app's stream; the oldest events go first.
	MaxBytes int64
}

// DefaultMaxBytes caps one app's events stream at 1 GiB.
const DefaultMaxBytes = 1 << 30

// DuplicateWindow is how long an idempotency key is remembered.
const DuplicateWindow = 2 * time.Minute

// StreamConfig is the events stream of one app: limits retention bounded per
// channel by count and by age (the replay window), and a RePublish of every
// stored message to the live subjects that gateways listen on.
func StreamConfig(app *appconf.App, opt StreamOptions) jetstream.StreamConfig {
	replicas, maxBytes := opt.limits()
	return jetstream.StreamConfig{
		Name:              names.EventsStream(app.ID),
		Description:       "Herald channel events of app " + app.ID,
		Subjects:          []string{names.EventsSubjects(app.ID)},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(app.ReplayMaxEvents),
		MaxAge:            app.ReplayWindow.D(),
		MaxBytes:          maxBytes,
		// Room for the data limit plus headers, channel and event name.
		MaxMsgSize:  int32(app.MaxEventBytes + 4096),
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  min(DuplicateWindow, app.ReplayWindow.D()),
		AllowDirect: true,
		RePublish: &jetstream.RePublish{
			Source:      names.EventsSubjects(app.ID),
			Destination: names.LiveRepublishDestination(app.ID),
		},
	}
}

// limits returns the replicas and byte cap with their defaults.
func (o StreamOptions) limits() (replicas int, maxBytes int64) {
	replicas, maxBytes = o.Replicas, o.MaxBytes
	if replicas <= 0 {
		replicas = 1
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return replicas, maxBytes
}

// EnsureStream creates the app's events stream, or updates it to the current
// configuration. Any service may call it at start; concurrent callers agree.
func EnsureStream(ctx context.Context, js jetstream.JetStream, app *appconf.App, opt StreamOptions) (jetstream.Stream, error) {
	return ensure(ctx, js, StreamConfig(app, opt), "events")
}

// ensure creates or updates a stream, trying again while another service
// creates the same stream at the same moment.
func ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, what string) (jetstream.Stream, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			return s, nil
		}
		lastErr = err
		// Two services creating the same stream at once: one wins, the
		// other sees "already in use" and updates on the next try.
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && !errors.Is(err, nats.ErrTimeout) &&
			!errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("ensuring %s stream %s: %w", what, cfg.Name, lastErr)
}
