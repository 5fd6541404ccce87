package replay

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/events/eventstest"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPositionsSurviveARestart: the epoch is the stream's creation time,
// which the store keeps, so a client resumes across a restart of the NATS
// server (the single-process Herald restarts its embedded one).
func TestPositionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	app := eventstest.App(t, appconf.App{ID: "app"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// start runs a server on the same store each time.
	start := func() (*server.Server, *nats.Conn, jetstream.JetStream, *Engine) {
		t.Helper()
		srv := natstest.StartWith(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
		nc, js := natstest.JetStream(t, srv)
		eventstest.Ensure(t, js, app)
		eng, err := New(nc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return srv, nc, js, eng
	}
	publish := func(js jetstream.JetStream) uint64 {
		t.Helper()
		ack, err := js.PublishMsg(ctx, events.Event{AppID: app.ID, Channel: "a", Name: "x", Data: "{}"}.Msg())
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}

	srv, nc, js, eng := start()
	publish(js)
	p, err := eng.CurrentPosition(ctx, app.ID, "a")
	if err != nil {
		t.Fatal(err)
	}
	missed := []uint64{publish(js), publish(js)}
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()

	_, _, _, eng = start()
	h, err := eng.Resume(ctx, app.ID, "a", p.String())
	if err != nil {
		t.Fatalf("resume after a restart: %v", err)
	}
	if got := seqs(h.Events); !slices.Equal(got, missed) {
		t.Fatalf("events %v, want %v", got, missed)
	}
}
