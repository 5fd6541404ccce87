package session

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/webhooks"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Webhooks queues the webhooks that only a gateway sees happen (client_event,
// cache_miss) in names.WebhooksStream, where the presence service delivers,
// signs and retries them as it does its own. Nothing is published for an app
// whose endpoints do not take the event type.
type Webhooks struct {
	// JS publishes asynchronously; its error handler reports failures.
	JS jetstream.JetStream
	// Gateway is this gateway's id: with the socket id and a per-connection
	// count it makes each event's message id unique.
	Gateway string
	Logger  *slog.Logger
}

// webhook queues e for each of the app's endpoints that takes it
// (webhooks.Messages), under an id unique to this event.
func (s *Session) webhook(e webhooks.Event) {
	w := s.hooks
	if w == nil || w.JS == nil || !s.app.WantsWebhook(e.Name) {
		return
	}
	id := "gw-" + w.Gateway + "-" + s.id + "-" + strconv.FormatUint(s.hookSeq.Add(1), 10)
	msgs, err := webhooks.Messages(s.app.ID, s.app.Webhooks, id, time.Now(), []webhooks.Event{e})
	if err != nil {
		s.logger().Warn("queueing a webhook", "channel", e.Channel, "err", err)
		return
	}
	for _, m := range msgs {
		if _, err := w.JS.PublishMsgAsync(m); err != nil {
			s.logger().Warn("queueing a webhook", "channel", e.Channel, "err", err)
		}
	}
}

// clientEventData is a client event's data as Pusher's webhook carries it:
// the string itself, or the JSON the client sent.
func clientEventData(raw json.RawMessage) string {
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	return string(raw)
}

// AsyncErrHandler logs a webhook that JetStream did not store.
func (w *Webhooks) AsyncErrHandler(_ jetstream.JetStream, m *nats.Msg, err error) {
	if w.Logger != nil {
		w.Logger.Warn("queueing a webhook", "subject", m.Subject, "err", err)
	}
}
