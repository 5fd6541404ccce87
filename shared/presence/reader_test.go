package presence

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestReader(t *testing.T) {
	s := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := NewReader(ctx, js, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, names.PresenceStateBucket)
	if err != nil {
		t.Fatal(err)
	}
	put := func(st ChannelState) {
		b, _ := json.Marshal(st)
		if _, err := kv.Put(ctx, names.ChannelStateKey(st.App, st.Channel), b); err != nil {
			t.Fatal(err)
		}
	}
	put(ChannelState{App: "a", Channel: "news", SubscriptionCount: 3, Gateways: map[string]int{"g1": 2, "g2": 1}})
	put(ChannelState{App: "a", Channel: "news.eu", SubscriptionCount: 1, Gateways: map[string]int{"g1": 1}})
	put(ChannelState{App: "a", Channel: "presence-room", SubscriptionCount: 3, UserCount: 2, Members: map[string]MemberState{
		"u2": {Conns: []Conn{{"g1", "1.1"}}}, "u1": {Conns: []Conn{{"g1", "1.2"}, {"g2", "2.1"}}}}})
	put(ChannelState{App: "b", Channel: "news", SubscriptionCount: 9})

	tests := []struct {
		name   string
		prefix string
		want   []string
	}{
		{"all", "", []string{"news", "news.eu", "presence-room"}},
		{"prefix", "news", []string{"news", "news.eu"}},
		{"prefix with an encoded byte", "news.", []string{"news.eu"}},
		{"presence", "presence-", []string{"presence-room"}},
		{"none", "private-", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := r.Channels(ctx, "a", tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range list {
				got = append(got, c.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Channels(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		})
	}

	room, err := r.Channel(ctx, "a", "presence-room")
	if err != nil || !room.Occupied || room.UserCount != 2 || room.SubscriptionCount != 3 {
		t.Fatalf("Channel(presence-room) = %+v, %v", room, err)
	}
	users, err := r.Users(ctx, "a", "presence-room")
	if err != nil || !slices.Equal(users, []string{"u1", "u2"}) {
		t.Fatalf("Users = %v, %v", users, err)
	}
	empty, err := r.Channel(ctx, "a", "quiet")
	if err != nil || empty.Occupied || empty.Name != "quiet" {
		t.Fatalf("Channel(quiet) = %+v, %v", empty, err)
	}
	if users, err := r.Users(ctx, "a", "presence-quiet"); err != nil || len(users) != 0 {
		t.Fatalf("Users(presence-quiet) = %v, %v", users, err)
	}
}

// A reader started while JetStream is not available yet (a fresh cluster
// electing its leaders) waits for it instead of failing.
func TestNewReaderWaitsForJetStream(t *testing.T) {
	natstest.CheckWaitsForJetStream(t, func(ctx context.Context, js jetstream.JetStream) error {
		_, err := NewReader(ctx, js, Options{})
		return err
	})
}
