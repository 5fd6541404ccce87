package webhooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
)

func TestMessages(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	occupied := Event{Name: ChannelOccupied, Channel: "presence-r"}
	added := Event{Name: MemberAdded, Channel: "presence-r", UserID: "u1"}
	many := make([]Event, MaxEvents+1)
	for i := range many {
		many[i] = Event{Name: MemberRemoved, Channel: "presence-r", UserID: fmt.Sprint(i)}
	}
	tests := []struct {
		name    string
		hooks   []Endpoint
		events  []Event
		batches []int // events per message, in order
	}{
		{"no endpoint", nil, []Event{occupied}, nil},
		{"every event type", []Endpoint{{URL: "http://one"}}, []Event{occupied, added}, []int{2}},
		{"filtered", []Endpoint{{URL: "http://one", EventTypes: []string{MemberAdded}}}, []Event{occupied, added}, []int{1}},
		{"filtered out", []Endpoint{{URL: "http://one", EventTypes: []string{ChannelVacated}}}, []Event{occupied, added}, nil},
		{"two endpoints", []Endpoint{{URL: "http://one"}, {URL: "http://two", EventTypes: []string{ChannelOccupied}}},
			[]Event{occupied, added}, []int{2, 1}},
		{"same URL twice", []Endpoint{{URL: "http://one"}, {URL: "http://one"}}, []Event{occupied}, []int{1}},
		{"split", []Endpoint{{URL: "http://one"}}, many, []int{MaxEvents, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := Messages("a", tt.hooks, "op-7", at, tt.events)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(tt.batches) {
				t.Fatalf("%d messages, want %d", len(msgs), len(tt.batches))
			}
			again, _ := Messages("a", tt.hooks, "op-7", at.Add(time.Second), tt.events)
			ids := map[string]bool{}
			for i, m := range msgs {
				var b Batch
				if err := json.Unmarshal(m.Data, &b); err != nil || b.TimeMS != at.UnixMilli() || len(b.Events) != tt.batches[i] {
					t.Fatalf("message %d: %s (%v)", i, m.Data, err)
				}
				id := m.Header.Get(names.HeaderNatsMsgID)
				if id == "" || id != m.Header.Get(names.HeaderWebhookID) || ids[id] {
					t.Fatalf("message %d: id %q, webhook id %q, seen %v", i, id, m.Header.Get(names.HeaderWebhookID), ids[id])
				}
				ids[id] = true
				if again[i].Header.Get(names.HeaderNatsMsgID) != id {
					t.Fatalf("message %d: id %q the first time, %q the second", i, id, again[i].Header.Get(names.HeaderNatsMsgID))
				}
			}
		})
	}
}

func TestBatchJSON(t *testing.T) {
	b, _ := json.Marshal(Batch{TimeMS: 5, Events: []Event{
		{Name: ChannelOccupied, Channel: "c"}, {Name: MemberAdded, Channel: "presence-c", UserID: "u"}}})
	want := `{"time_ms":5,"events":[{"name":"channel_occupied","channel":"c"},{"name":"member_added","channel":"presence-c","user_id":"u"}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

// TestEventJSON pins the bodies Pusher's receivers parse: the fields of
// each type, subscription_count written even when 0.
func TestEventJSON(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Name: ClientEvent, Channel: "private-c", Event: "client-x", Data: `{"a":1}`, SocketID: "1.2", UserID: "u"},
			`{"name":"client_event","channel":"private-c","event":"client-x","data":"{\"a\":1}","socket_id":"1.2","user_id":"u"}`},
		{Event{Name: CacheMiss, Channel: "cache-c"}, `{"name":"cache_miss","channel":"cache-c"}`},
		{Event{Name: SubscriptionCount, Channel: "c"}, `{"name":"subscription_count","channel":"c","subscription_count":0}`},
		{Event{Name: SubscriptionCount, Channel: "c", SubscriptionCount: 3}, `{"name":"subscription_count","channel":"c","subscription_count":3}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.ev)
		if err != nil || string(b) != tt.want {
			t.Errorf("got  %s (%v)\nwant %s", b, err, tt.want)
		}
	}
}

func TestEndpointTakes(t *testing.T) {
	all := Endpoint{URL: "https://hooks.example/all"}
	some := Endpoint{URL: "https://hooks.example/some", EventTypes: []string{ChannelOccupied, ClientEvent}}
	cases := []struct {
		name  string
		hook  Endpoint
		event string
		want  bool
	}{
		{"all takes occupancy", all, ChannelOccupied, true},
		{"all takes members", all, MemberAdded, true},
		{"all skips client events", all, ClientEvent, false},
		{"all skips cache misses", all, CacheMiss, false},
		{"all skips counts", all, SubscriptionCount, false},
		{"listed occupancy", some, ChannelOccupied, true},
		{"listed client events", some, ClientEvent, true},
		{"unlisted vacated", some, ChannelVacated, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.hook.Takes(c.event); got != c.want {
				t.Errorf("Takes(%q) = %v, want %v", c.event, got, c.want)
			}
		})
	}
}

// TestDigestStable pins the endpoint digest: message ids of batches
// already queued, and the delivery consumers' names, derive from it.
func TestDigestStable(t *testing.T) {
	if got, want := Digest("app", "https://hooks.example/h"), digestOf("3:app23:https://hooks.example/h"); got != want {
		t.Fatalf("Digest = %s, want %s", got, want)
	}
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}
