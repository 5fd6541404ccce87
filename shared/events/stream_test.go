package events

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// startWithStream starts an embedded JetStream with testApp's events
// stream, ensured twice as two services starting at once would.
func startWithStream(t *testing.T) (*nats.Conn, jetstream.JetStream, *appconf.App) {
	t.Helper()
	nc, js := natstest.JetStream(t, natstest.Start(t))
	app := testApp(t)
	for i := range 2 {
		if _, err := EnsureStream(t.Context(), js, app, StreamOptions{}); err != nil {
			t.Fatalf("EnsureStream #%d: %v", i, err)
		}
	}
	return nc, js, app
}

func TestStoredEventsAreRepublishedLive(t *testing.T) {
	nc, js, app := startWithStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
