package events

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
)

func testApp(t *testing.T) *appconf.App {
	t.Helper()
	r, err := appconf.NewRegistry([]appconf.App{{ID: "app.1", Key: "key", Secret: "a-long-test-secret-value"}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.ByID("app.1")
	return a
}

func TestStoredEventsAreRepublishedLive(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.JetStream(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app := testApp(t)
	// Twice, as two services starting at once would.
	for i := 0; i < 2; i++ {
		if _, err := EnsureStream(ctx, js, app, StreamOptions{}); err != nil {
			t.Fatalf("EnsureStream #%d: %v", i, err)
		}
	}
	channel := "private-orders.42"
	sub, err := nc.SubscribeSync(names.LiveSubject(app.ID, channel))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		ev := Event{AppID: app.ID, Channel: channel, Name: "progress", Data: `{"pct":50}`, ExcludeSocketID: "1.2"}
		if _, err := js.PublishMsg(ctx, ev.Msg()); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for i := 1; i <= 2; i++ {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("live message %d: %v", i, err)
		}
		if got := m.Header.Get(names.HeaderEvent); got != "progress" {
			t.Errorf("event header = %q", got)
		}
		if got := m.Header.Get(names.HeaderExclude); got != "1.2" {
			t.Errorf("exclude header = %q", got)
		}
		if got := m.Header.Get(names.HeaderNatsSequence); got != strconv.Itoa(i) {
			t.Errorf("sequence = %q, want %d", got, i)
		}
		if string(m.Data) != `{"pct":50}` {
			t.Errorf("data = %s", m.Data)
		}
		ch, err := names.ChannelFromSubject(m.Subject)
		if err != nil || ch != channel {
			t.Errorf("channel from %q = %q, %v", m.Subject, ch, err)
		}
	}
}

// An events stream created before fast batches (without allow_batched) is
// updated to take them, its events kept.
func TestStreamWithoutBatchesIsUpdated(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.JetStream(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	app := testApp(t)
	old := StreamConfig(app, StreamOptions{})
	old.AllowBatchPublish = false
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	ev := Event{AppID: app.ID, Channel: "orders", Name: "created", Data: `{}`}
	if _, err := js.PublishMsg(ctx, ev.Msg()); err != nil {
		t.Fatal(err)
	}
	s, err := EnsureStream(ctx, js, app, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Config.AllowBatchPublish || info.State.Msgs != 1 {
		t.Fatalf("after ensuring: allow_batched %v, %d messages; want true, 1", info.Config.AllowBatchPublish, info.State.Msgs)
	}
}
