package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/webhooks"
	"github.com/nats-io/nats.go/jetstream"
)

// endpoint is a webhook receiver that can be taken down (503) and brought
// back.
type endpoint struct {
	*httptest.Server
	down     atomic.Bool
	attempts atomic.Int64
	mu       sync.Mutex
	got      []string // channels of the events received, in order
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.attempts.Add(1)
		if e.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var b webhooks.Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		for _, ev := range b.Events {
			e.got = append(e.got, ev.Channel)
		}
		e.mu.Unlock()
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func (e *endpoint) has(channel string) bool {
	for _, c := range e.received() {
		if c == channel {
			return true
		}
	}
	return false
}

// queueEnv is a webhook queue on an embedded JetStream server and a
// deliverer for one app.
type queueEnv struct {
	t       *testing.T
	ctx     context.Context
	js      jetstream.JetStream
	app     *appconf.App
	seq     int
	dropped atomic.Int64
}

func startDelivery(t *testing.T, opt Options, hooks ...*endpoint) *queueEnv {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.JetStream(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := js.CreateStream(ctx, StreamConfig(presence.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	app := appconf.App{ID: "app", Key: "key", Secret: "a-long-test-secret-value"}
	for _, h := range hooks {
		app.Webhooks = append(app.Webhooks, appconf.Webhook{URL: h.URL})
	}
	reg, err := appconf.NewRegistry([]appconf.App{app})
	if err != nil {
		t.Fatal(err)
	}
	e := &queueEnv{t: t, ctx: ctx, js: js}
	e.app, _ = reg.ByID("app")
	opt.Stream, opt.Apps = st, reg
	opt.Result = func(outcome string) {
		if outcome == "dropped" {
			e.dropped.Add(1)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Deliver(ctx, opt)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// queue queues channel_occupied of channel for every endpoint.
func (e *queueEnv) queue(channel string) {
	e.t.Helper()
	e.seq++
	msgs, err := webhooks.Messages(e.app.ID, e.app.Webhooks, "op-"+strconv.Itoa(e.seq), time.Now(), []webhooks.Event{{Name: webhooks.ChannelOccupied, Channel: channel}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
			e.t.Fatal(err)
		}
	}
}

// waitFor polls cond for up to poll.Patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, poll.Patience, what, cond)
}

// An endpoint back from an outage gets its backlog and fresh webhooks
// without waiting out the backoff its outage reached (here 10 s, twice as
// long as the test waits); another endpoint of the app is never held up.
func TestDeliveryCatchesUpAfterAnOutage(t *testing.T) {
	down, up := newEndpoint(t), newEndpoint(t)
	down.down.Store(true)
	e := startDelivery(t, Options{Backoff: 10 * time.Second}, down, up)

	e.queue("during-1")
	waitFor(t, "a failed attempt", func() bool { return down.attempts.Load() >= 1 })
	e.queue("during-2")
	waitFor(t, "the other endpoint to get both", func() bool { return up.has("during-2") })
	if down.has("during-1") {
		t.Fatal("delivered while down")
	}

	down.down.Store(false)
	e.queue("after")
	waitFor(t, "the backlog and the fresh webhook", func() bool { return down.has("after") })
	if got := down.received(); len(got) != 3 || got[0] != "during-1" || got[1] != "during-2" || got[2] != "after" {
		t.Fatalf("received %v, want during-1, during-2, after in order", got)
	}
}

// A batch is retried until it is RetryFor old, not dropped early because
// the next backoff step would pass that age.
func TestRetriedForTheWholeRetryPeriod(t *testing.T) {
	ep := newEndpoint(t)
	ep.down.Store(true)
	// Attempts at 0 and 1 s; the next backoff step (2 s) would pass 1.5 s.
	e := startDelivery(t, Options{Backoff: time.Second, RetryFor: 1500 * time.Millisecond}, ep)
	e.queue("late")
	waitFor(t, "two failed attempts", func() bool { return ep.attempts.Load() >= 2 })
	ep.down.Store(false)
	waitFor(t, "delivery within the retry period", func() bool { return ep.has("late") || e.dropped.Load() > 0 })
	if !ep.has("late") {
		t.Fatal("dropped before its retry period was over")
	}

	// Down for longer than the period: dropped, and the next one delivered.
	ep.down.Store(true)
	e.queue("lost")
	waitFor(t, "the batch to be dropped", func() bool { return e.dropped.Load() == 1 })
	ep.down.Store(false)
	e.queue("next")
	waitFor(t, "the next batch", func() bool { return ep.has("next") })
	if ep.has("lost") {
		t.Fatal("a dropped batch was delivered")
	}
}
