// Package events defines how channel events live on the bus: the shape of an
// app's events stream and the message that carries one event.
package events

import (
	"context"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/option"
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
// stored message to the live subjects that gateways listen on. It takes
// fast batches (nats-server 2.14+): the trigger API stores the events of
// concurrent requests in one batch with one acknowledgement.
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
		MaxMsgSize:        maxMsgSize(app),
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        min(DuplicateWindow, app.ReplayWindow.D()),
		AllowDirect:       true,
		AllowBatchPublish: true,
		RePublish: &jetstream.RePublish{
			Source:      names.EventsSubjects(app.ID),
			Destination: names.LiveRepublishDestination(app.ID),
		},
	}
}

// maxMsgSize is the largest message an app's streams take: room for the
// data limit plus headers, channel and event name.
func maxMsgSize(app *appconf.App) int32 {
	return int32(app.MaxEventBytes + 4096)
}

// limits returns the replicas and byte cap with their defaults.
func (o StreamOptions) limits() (replicas int, maxBytes int64) {
	replicas, maxBytes = o.Replicas, o.MaxBytes
	option.Default(&replicas, 1)
	option.Default(&maxBytes, DefaultMaxBytes)
	return replicas, maxBytes
}

// EnsureStream creates the app's events stream, or updates it when it differs
// from the current configuration (see package ensure).
func EnsureStream(ctx context.Context, js jetstream.JetStream, app *appconf.App, opt StreamOptions) (jetstream.Stream, error) {
	return ensure.Stream(ctx, js, StreamConfig(app, opt))
}
