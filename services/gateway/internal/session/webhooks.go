package session

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/names"
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

// hookEvent is one webhook event, as Pusher sends it.
type hookEvent struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	Event    string `json:"event,omitempty"`
	Data     string `json:"data,omitempty"`
	SocketID string `json:"socket_id,omitempty"`
	UserID   string `json:"user_id,omitempty"`
}

// webhook queues e for each of the app's endpoints that takes it.
func (s *Session) webhook(e hookEvent) {
	w := s.hooks
	if w == nil || w.JS == nil || !s.app.WantsWebhook(e.Name) {
		return
	}
	body, err := json.Marshal(struct {
		TimeMS int64       `json:"time_ms"`
		Events []hookEvent `json:"events"`
	}{time.Now().UnixMilli(), []hookEvent{e}})
	if err != nil {
		return
	}
	id := "gw-" + w.Gateway + "-" + s.id + "-" + strconv.FormatUint(s.hookSeq.Add(1), 10)
	seen := map[string]bool{}
	for _, h := range s.app.Webhooks {
		// One queue per URL, filtered as its first entry says.
		if h.URL == "" || seen[h.URL] {
			continue
		}
		seen[h.URL] = true
		if !h.Takes(e.Name) {
			continue
		}
		sum := sha256.Sum256([]byte(h.URL))
		mid := id + "-" + hex.EncodeToString(sum[:6])
		m := nats.NewMsg(names.WebhookSubject(s.app.ID, h.URL))
		m.Header.Set(names.HeaderNatsMsgID, mid)
		m.Header.Set(names.HeaderWebhookID, mid)
		m.Data = body
		if _, err := w.JS.PublishMsgAsync(m); err != nil {
			s.log.Warn("queueing a webhook", "channel", e.Channel, "err", err)
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
