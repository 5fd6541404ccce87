package webhook

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
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
		hooks   []appconf.Webhook
		events  []Event
		batches []int // events per message, in order
	}{
		{"no endpoint", nil, []Event{occupied}, nil},
		{"every event type", []appconf.Webhook{{URL: "http://one"}}, []Event{occupied, added}, []int{2}},
		{"filtered", []appconf.Webhook{{URL: "http://one", EventTypes: []string{MemberAdded}}}, []Event{occupied, added}, []int{1}},
		{"filtered out", []appconf.Webhook{{URL: "http://one", EventTypes: []string{ChannelVacated}}}, []Event{occupied, added}, nil},
		{"two endpoints", []appconf.Webhook{{URL: "http://one"}, {URL: "http://two", EventTypes: []string{ChannelOccupied}}},
			[]Event{occupied, added}, []int{2, 1}},
		{"same URL twice", []appconf.Webhook{{URL: "http://one"}, {URL: "http://one"}}, []Event{occupied}, []int{1}},
		{"split", []appconf.Webhook{{URL: "http://one"}}, many, []int{MaxEvents, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &appconf.App{ID: "a", Webhooks: tt.hooks}
			msgs, err := Messages(app, "op-7", at, tt.events)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(tt.batches) {
				t.Fatalf("%d messages, want %d", len(msgs), len(tt.batches))
			}
			again, _ := Messages(app, "op-7", at.Add(time.Second), tt.events)
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
