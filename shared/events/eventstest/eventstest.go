// Package eventstest gives a test one app with its events stream on an
// embedded JetStream (shared/natstest).
package eventstest

import (
	"context"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// App is app as its registry serves it (checked, defaults filled in), with
// a test key and secret where app has none.
func App(tb testing.TB, app appconf.App) *appconf.App {
	tb.Helper()
	if app.Key == "" {
		app.Key = "key"
	}
	if app.Secret == "" {
		app.Secret = "a-long-test-secret-value"
	}
	reg, err := appconf.NewRegistry([]appconf.App{app})
	if err != nil {
		tb.Fatal(err)
	}
	a, _ := reg.ByID(app.ID)
	return a
}

// Start runs an embedded JetStream server with app's events stream and
// returns it, a connection to it and that connection's JetStream.
func Start(tb testing.TB, app *appconf.App) (*server.Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	srv := natstest.Start(tb)
	nc, js := natstest.JetStream(tb, srv)
	Ensure(tb, js, app)
	return srv, nc, js
}

// Ensure creates or updates app's events stream.
func Ensure(tb testing.TB, js jetstream.JetStream, app *appconf.App) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := events.EnsureStream(ctx, js, app, events.StreamOptions{}); err != nil {
		tb.Fatalf("ensuring the events stream of %s: %v", app.ID, err)
	}
}
