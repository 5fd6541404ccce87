// Package webhooks is the contract of Herald's webhooks between the services
// that queue them and the one that delivers them: the event types, which
// endpoint takes which, the body of one POST, and the queued messages with
// their ids.
//
// The presence service queues channel_occupied, channel_vacated,
// member_added, member_removed and subscription_count; the gateways queue
// client_event and cache_miss, which only they see happen. Both queue with
// Messages in names.WebhooksStream, one subject per app and endpoint URL,
// and the active presence service delivers, signs and retries them all the
// same way.
//
// A queued message is one batch for one endpoint, POSTed as is. Its id
// (header X-Herald-Webhook-Id, also its Nats-Msg-Id) is the id of the step
// that produced the events, then "-" and Digest(app, url), then "-" and the
// part number after the first MaxEvents events. The presence service derives
// a step's id from the operation it applied, so that the id is the same on
// every retry, after a restart and when the operation is applied again after
// a crash: a receiver that sees an id twice (its answer was lost) drops the
// second. A gateway's ids are unique per event.
package webhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
)

// Event types, as Pusher names them.
const (
	ChannelOccupied   = "channel_occupied"
	ChannelVacated    = "channel_vacated"
	MemberAdded       = "member_added"
	MemberRemoved     = "member_removed"
	ClientEvent       = "client_event"
	CacheMiss         = "cache_miss"
	SubscriptionCount = "subscription_count"
)

// optIn are the types sent per client event, per cache miss or per count
// change: frequent enough that an endpoint gets them only when its
// EventTypes names them, as Pusher enables each of them on its own.
var optIn = []string{ClientEvent, CacheMiss, SubscriptionCount}

// Endpoint is one of an app's webhook URLs and the event types it takes.
type Endpoint struct {
	URL string `json:"url"`
	// EventTypes are the types the endpoint takes; none: every type but
	// client_event, cache_miss and subscription_count.
	EventTypes []string `json:"event_types,omitempty"`
}

// Takes reports whether the endpoint receives event type name.
func (e Endpoint) Takes(name string) bool {
	if len(e.EventTypes) == 0 {
		return !slices.Contains(optIn, name)
	}
	return slices.Contains(e.EventTypes, name)
}

// Endpoints are the endpoints batches go to: one per URL, the first entry
// of a URL deciding what it takes, without empty URLs.
func Endpoints(all []Endpoint) []Endpoint {
	var out []Endpoint
	for _, e := range all {
		if e.URL != "" && !slices.ContainsFunc(out, func(o Endpoint) bool { return o.URL == e.URL }) {
			out = append(out, e)
		}
	}
	return out
}

// Event is one event of a batch, as Pusher sends it.
type Event struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	// Event, Data and SocketID are a client event's.
	Event    string `json:"event,omitempty"`
	Data     string `json:"data,omitempty"`
	SocketID string `json:"socket_id,omitempty"`
	UserID   string `json:"user_id,omitempty"`
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

// MaxEvents splits the events of one step (a gateway's removal can produce
// thousands) into batches of at most this many.
const MaxEvents = 500

// Messages builds the queued batches of events for each of an app's
// endpoints that takes some of them. id names the step (see the package
// documentation): the same whenever the same step is applied again.
func Messages(appID string, endpoints []Endpoint, id string, at time.Time, events []Event) ([]*nats.Msg, error) {
	var msgs []*nats.Msg
	for _, w := range Endpoints(endpoints) {
		var mine []Event
		for _, e := range events {
			if w.Takes(e.Name) {
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
			m := nats.NewMsg(names.WebhookSubject(appID, w.URL))
			bid := id + "-" + Digest(appID, w.URL)
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

// Digest is a short hash of parts, unambiguous in how they are split: it
// names an app's endpoint in message ids and consumer names.
func Digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
