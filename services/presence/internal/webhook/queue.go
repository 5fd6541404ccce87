// Package webhook queues Pusher webhooks in a JetStream work queue and
// delivers them: batched per app and endpoint, signed with the app's secret,
// retried with exponential backoff and acknowledged only after a 2xx, so
// that a restart of the presence service loses none.
//
// Each queued message is one batch for one endpoint and is POSTed as is. Its
// id (header X-Herald-Webhook-Id, also its Nats-Msg-Id) is derived from the
// operation that produced it, so it is the same on every retry, after a
// restart, and when the operation is applied again after a crash: a receiver
// that sees an id twice (its answer was lost) drops the second. Gateways
// queue client_event and cache_miss batches on the same subjects, with ids
// unique per event.
package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Webhook event names, as Pusher sends them.
const (
	ChannelOccupied = "channel_occupied"
	ChannelVacated  = "channel_vacated"
	MemberAdded     = "member_added"
	MemberRemoved   = "member_removed"
	// SubscriptionCount is queued from the throttled counts; gateways
	// queue client_event and cache_miss themselves.
	SubscriptionCount = appconf.WebhookSubscriptionCount
)

// Event is one event of a batch.
type Event struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	UserID  string `json:"user_id,omitempty"`
	// SubscriptionCount is written on subscription_count, even when 0.
	SubscriptionCount int `json:"subscription_count,omitempty"`
}

// MarshalJSON writes subscription_count on that event only.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	if e.Name != SubscriptionCount {
		return json.Marshal(plain(e))
	}
	return json.Marshal(struct {
		plain
		SubscriptionCount int `json:"subscription_count"`
	}{plain(e), e.SubscriptionCount})
}

// Batch is the body of one POST.
type Batch struct {
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// Bounds of the queue.
const (
	// MaxAge drops a batch nobody delivered: far beyond any retry period,
	// it only bounds batches of endpoints no longer configured.
	MaxAge = 24 * time.Hour
	// MaxEvents splits the events of one step (a gateway's removal can
	// produce thousands) into batches of at most this many.
	MaxEvents = 500
)

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

// Wanted reports whether app has an endpoint that takes event name.
func Wanted(app *appconf.App, name string) bool {
	for _, w := range app.Webhooks {
		if takes(w, name) {
			return true
		}
	}
	return false
}

func takes(w appconf.Webhook, name string) bool { return w.Takes(name) }

// Endpoints lists app's webhooks, one per URL (the first wins).
func Endpoints(app *appconf.App) []appconf.Webhook {
	var out []appconf.Webhook
	for _, w := range app.Webhooks {
		if w.URL != "" && !slices.ContainsFunc(out, func(o appconf.Webhook) bool { return o.URL == w.URL }) {
			out = append(out, w)
		}
	}
	return out
}

// Messages builds the queued batches of events for each of app's endpoints
// that takes some of them. id must be the same whenever the same step is
// applied again.
func Messages(app *appconf.App, id string, at time.Time, events []Event) ([]*nats.Msg, error) {
	var msgs []*nats.Msg
	for _, w := range Endpoints(app) {
		var mine []Event
		for _, e := range events {
			if takes(w, e.Name) {
				mine = append(mine, e)
			}
		}
		for part := 0; len(mine) > 0; part++ {
			n := min(len(mine), MaxEvents)
			b, err := json.Marshal(Batch{TimeMS: at.UnixMilli(), Events: mine[:n]})
			if err != nil {
				return nil, fmt.Errorf("encoding a webhook batch: %w", err)
			}
			mine = mine[n:]
			m := nats.NewMsg(names.WebhookSubject(app.ID, w.URL))
			bid := id + "-" + Digest(app.ID, w.URL)
			if part > 0 {
				bid += "-" + strconv.Itoa(part)
			}
			m.Header.Set(names.HeaderNatsMsgID, bid)
			m.Header.Set(names.HeaderWebhookID, bid)
			m.Data = b
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

// Digest is a short hash of parts, unambiguous in how they are split.
func Digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
