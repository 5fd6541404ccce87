// Package webhook keeps the queue of Pusher webhooks, a JetStream work
// queue, and delivers it: batched per app and endpoint, signed with the
// app's secret, retried with exponential backoff and acknowledged only after
// a 2xx, so that a restart of the presence service loses none. What is
// queued, and under which ids, is the contract of shared/webhooks.
package webhook

import (
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxAge drops a batch nobody delivered: far beyond any retry period, it
// only bounds batches of endpoints no longer configured.
const MaxAge = 24 * time.Hour

// StreamConfig is names.WebhooksStream: a work queue deduplicating on the
// batch ids for as long as member events are.
func StreamConfig(o presence.Options) jetstream.StreamConfig {
	replicas := max(o.Replicas, 1)
	return jetstream.StreamConfig{
		Name:        names.WebhooksStream,
		Description: "Herald webhook batches waiting for delivery",
		Subjects:    []string{names.WebhookSubjects()},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      MaxAge,
		MaxMsgSize:  presence.MaxMsgBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  presence.DuplicateWindow,
	}
}
