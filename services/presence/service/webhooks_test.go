package service

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/herald-ws/herald/shared/webhooks"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	hookKey    = "hook-key"
	hookSecret = "hook-secret-0123456789"
)

// receiver is a webhook endpoint that checks each POST's key and signature
// and answers with status (200 unless set), after failing the first fail
// attempts.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	fail     int
	status   int
	attempts int
	batches  []received
	raw      []string // the accepted bodies
}

type received struct {
	id    string
	batch webhooks.Batch
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		if req.Header.Get("X-Pusher-Key") != hookKey {
			t.Errorf("X-Pusher-Key %q", req.Header.Get("X-Pusher-Key"))
		}
		if !hmac.Equal([]byte(signing.Webhook(hookSecret, body)), []byte(req.Header.Get("X-Pusher-Signature"))) {
			t.Errorf("bad signature on %s", body)
		}
		var b webhooks.Batch
		if err := json.Unmarshal(body, &b); err != nil || b.TimeMS == 0 || len(b.Events) == 0 {
			t.Errorf("bad batch %s: %v", body, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.status/100 != 2 {
			w.WriteHeader(r.status)
			return
		}
		r.batches = append(r.batches, received{req.Header.Get("X-Herald-Webhook-Id"), b})
		r.raw = append(r.raw, string(body))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) set(fail, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail, r.status = fail, status
}

func (r *receiver) tries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// events lists the events received, a duplicate batch (same id) once; it
// fails the test if two batches with one id differ.
func (r *receiver) events() []webhooks.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]webhooks.Batch{}
	var out []webhooks.Event
	for _, b := range r.batches {
		if b.id == "" {
			r.t.Errorf("a batch without X-Herald-Webhook-Id")
		}
		if prev, dup := seen[b.id]; dup {
			if !slices.Equal(prev.Events, b.batch.Events) {
				r.t.Errorf("batch %s arrived twice with different events", b.id)
			}
			continue
		}
		seen[b.id] = b.batch
		out = append(out, b.batch.Events...)
	}
	return out
}

func (r *receiver) batchCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)
}

func hookApps(t *testing.T, hooks ...appconf.Webhook) *appconf.Registry {
	t.Helper()
	reg, err := appconf.NewRegistry([]appconf.App{{ID: "a", Key: hookKey, Secret: hookSecret, Webhooks: hooks}})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func waitEvents(t *testing.T, r *receiver, want []webhooks.Event) {
	t.Helper()
	var got []webhooks.Event
	poll.Until(t, poll.Patience, "the webhooks arrive", func() bool {
		got = r.events()
		return len(got) >= len(want)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("webhook events\n got %+v\nwant %+v", got, want)
	}
}

func TestWebhooksSignedAndBatched(t *testing.T) {
	s, _ := setup(t)
	all, occupancy := newReceiver(t), newReceiver(t)
	// Registered first: a stream update concurrent with the service
	// creating its consumer trips a race inside nats-server.
	g := register(t, s, "gw-1")
	run(t, s, Options{WebhookBackoff: 10 * time.Millisecond, Apps: hookApps(t,
		appconf.Webhook{URL: all.srv.URL},
		appconf.Webhook{URL: occupancy.srv.URL, EventTypes: []string{webhooks.ChannelOccupied, webhooks.ChannelVacated}})})

	// One snapshot: its events arrive in one batch.
	g.publish(presence.Op{Op: presence.Snapshot, SnapshotID: "s2", Last: true, Reg: g.reg, Subs: []presence.Sub{
		{App: "a", Channel: "news", SocketID: "1.1"},
		{App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1"},
	}})
	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.2", UserID: "u2"})
	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.3", UserID: "u2"})
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "presence-r", SocketID: "1.2"})
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "presence-r", SocketID: "1.3"})
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "presence-r", SocketID: "1.1"})
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "news", SocketID: "1.1"})

	waitEvents(t, all, []webhooks.Event{
		{Name: "channel_occupied", Channel: "news"},
		{Name: "channel_occupied", Channel: "presence-r"},
		{Name: "member_added", Channel: "presence-r", UserID: "u1"},
		{Name: "member_added", Channel: "presence-r", UserID: "u2"},
		{Name: "member_removed", Channel: "presence-r", UserID: "u2"},
		{Name: "member_removed", Channel: "presence-r", UserID: "u1"},
		{Name: "channel_vacated", Channel: "presence-r"},
		{Name: "channel_vacated", Channel: "news"},
	})
	all.mu.Lock()
	first := all.batches[0].batch.Events
	all.mu.Unlock()
	if len(first) != 3 {
		t.Errorf("the snapshot's events came in %d-event batch %+v, want one of 3", len(first), first)
	}
	waitEvents(t, occupancy, []webhooks.Event{
		{Name: "channel_occupied", Channel: "news"},
		{Name: "channel_occupied", Channel: "presence-r"},
		{Name: "channel_vacated", Channel: "presence-r"},
		{Name: "channel_vacated", Channel: "news"},
	})
}

func TestWebhookRetries(t *testing.T) {
	s, _ := setup(t)
	r := newReceiver(t)
	r.set(3, http.StatusOK)
	g := register(t, s, "gw-1")
	run(t, s, Options{WebhookBackoff: 10 * time.Millisecond, Apps: hookApps(t, appconf.Webhook{URL: r.srv.URL})})
	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "news", SocketID: "1.1"})
	waitEvents(t, r, []webhooks.Event{{Name: "channel_occupied", Channel: "news"}})
	if n := r.tries(); n < 4 {
		t.Fatalf("%d attempts, want 3 failed and 1 accepted", n)
	}
}

// waitQueueEmpty waits until the webhook queue holds nothing and also
// holds; what names the wait.
func waitQueueEmpty(t *testing.T, js jetstream.JetStream, what string, also func() bool) {
	t.Helper()
	st, err := js.Stream(t.Context(), names.WebhooksStream)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, poll.Patience, what, func() bool {
		info, err := st.Info(t.Context())
		return err == nil && info.State.Msgs == 0 && also()
	})
}

func TestWebhookGivesUpAfterRetryFor(t *testing.T) {
	s, js := setup(t)
	r := newReceiver(t)
	r.set(0, http.StatusServiceUnavailable)
	g := register(t, s, "gw-1")
	run(t, s, Options{WebhookBackoff: 10 * time.Millisecond, WebhookRetryFor: 200 * time.Millisecond,
		Apps: hookApps(t, appconf.Webhook{URL: r.srv.URL})})
	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "news", SocketID: "1.1"})
	waitQueueEmpty(t, js, "the batch is dropped from the queue", func() bool { return r.tries() > 1 })
}

func TestWebhooksSurviveRestart(t *testing.T) {
	s, _ := setup(t)
	r := newReceiver(t)
	r.set(0, http.StatusServiceUnavailable)
	opt := Options{WebhookBackoff: 10 * time.Millisecond, Apps: hookApps(t, appconf.Webhook{URL: r.srv.URL})}
	g := register(t, s, "gw-1")
	_, stop := run(t, s, opt)
	seq := g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1"})
	g.members("a", "presence-r", seq)
	poll.Until(t, poll.Patience, "an attempt failed", func() bool { return r.tries() > 0 })
	stop()

	r.set(0, http.StatusOK)
	run(t, s, opt)
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "presence-r", SocketID: "1.1"})
	waitEvents(t, r, []webhooks.Event{
		{Name: "channel_occupied", Channel: "presence-r"},
		{Name: "member_added", Channel: "presence-r", UserID: "u1"},
		{Name: "member_removed", Channel: "presence-r", UserID: "u1"},
		{Name: "channel_vacated", Channel: "presence-r"},
	})
}

func TestDeadEndpointDelaysNoOther(t *testing.T) {
	s, _ := setup(t)
	release := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(dead.Close)
	t.Cleanup(func() { close(release) })
	live := newReceiver(t)
	g := register(t, s, "gw-1")
	run(t, s, Options{WebhookTimeout: time.Minute, WebhookBackoff: 10 * time.Millisecond,
		Apps: hookApps(t, appconf.Webhook{URL: dead.URL}, appconf.Webhook{URL: live.srv.URL})})
	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1"})
	seq := g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.2", UserID: "u2"})
	if rep := g.members("a", "presence-r", seq); len(rep.Members) != 2 {
		t.Fatalf("members while an endpoint hangs: %+v", rep)
	}
	waitEvents(t, live, []webhooks.Event{
		{Name: "channel_occupied", Channel: "presence-r"},
		{Name: "member_added", Channel: "presence-r", UserID: "u1"},
		{Name: "member_added", Channel: "presence-r", UserID: "u2"},
	})
}

func TestWebhooksQueuedOnceAfterCrash(t *testing.T) {
	s, js := setup(t)
	r := newReceiver(t)
	r.set(0, http.StatusServiceUnavailable)
	g := register(t, s, "gw-1")
	apps := hookApps(t, appconf.Webhook{URL: r.srv.URL})

	// The first instance queues the webhooks but never persists the state
	// nor acknowledges the operations: its connection dies first.
	nc := natstest.Connect(t, s)
	first, err := New(Options{NC: nc, Apps: apps, LockTTL: time.Second, FlushInterval: time.Hour,
		WebhookBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = first.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1"})
	poll.Until(t, poll.Patience, "a delivery was attempted", func() bool { return r.tries() > 0 })
	nc.Close()

	// The next instance applies the same operation again: its webhooks
	// carry the same ids, and the queue stores them once.
	r.set(0, http.StatusOK)
	run(t, s, Options{Apps: apps, WebhookBackoff: 10 * time.Millisecond})
	waitQueueEmpty(t, js, "every queued batch delivered", func() bool { return r.batchCount() > 0 })
	waitEvents(t, r, []webhooks.Event{
		{Name: "channel_occupied", Channel: "presence-r"},
		{Name: "member_added", Channel: "presence-r", UserID: "u1"},
	})
}

func TestSubscriptionCountWebhooks(t *testing.T) {
	s, _ := setup(t)
	counts, plain := newReceiver(t), newReceiver(t)
	g := register(t, s, "gw-1")
	run(t, s, Options{WebhookBackoff: 10 * time.Millisecond, CountInterval: time.Millisecond, Apps: hookApps(t,
		appconf.Webhook{URL: counts.srv.URL, EventTypes: []string{webhooks.SubscriptionCount}},
		appconf.Webhook{URL: plain.srv.URL})})

	g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "news", SocketID: "1.1"})
	waitEvents(t, counts, []webhooks.Event{{Name: "subscription_count", Channel: "news", SubscriptionCount: 1}})
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "news", SocketID: "1.1"})
	waitEvents(t, counts, []webhooks.Event{
		{Name: "subscription_count", Channel: "news", SubscriptionCount: 1},
		{Name: "subscription_count", Channel: "news", SubscriptionCount: 0},
	})
	counts.mu.Lock()
	raw := counts.raw[len(counts.raw)-1]
	counts.mu.Unlock()
	if !strings.Contains(raw, `"subscription_count":0`) {
		t.Errorf("a count of 0 is not written: %s", raw)
	}
	// An endpoint that names no types gets occupancy, not counts.
	waitEvents(t, plain, []webhooks.Event{
		{Name: "channel_occupied", Channel: "news"},
		{Name: "channel_vacated", Channel: "news"},
	})
}

func TestBatchOfOperations(t *testing.T) {
	s, _ := setup(t)
	r := newReceiver(t)
	g := register(t, s, "gw-1")
	apps, err := appconf.NewRegistry([]appconf.App{{ID: "a", Key: hookKey, Secret: hookSecret, MaxPresenceMembers: 2,
		Webhooks: []appconf.Webhook{{URL: r.srv.URL}}}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s, Options{WebhookBackoff: 10 * time.Millisecond, Apps: apps})

	join := func(ch, sock, user string) presence.Op {
		return presence.Op{Op: presence.Join, Gateway: g.id, App: "a", Channel: ch, SocketID: sock, UserID: user}
	}
	leave := func(ch, sock string) presence.Op {
		return presence.Op{Op: presence.Leave, Gateway: g.id, App: "a", Channel: ch, SocketID: sock}
	}
	// One message: a channel subscribed and left, then again; a presence
	// channel filled past its limit; members leaving.
	seq := g.publish(presence.BatchOf([]presence.Op{
		join("news", "1.1", ""), leave("news", "1.1"), join("news", "1.2", ""),
		join("presence-r", "1.3", "u1"), join("presence-r", "1.4", "u2"), join("presence-r", "1.5", "u3"),
		leave("presence-r", "1.3"),
	}))
	waitEvents(t, r, []webhooks.Event{
		{Name: "channel_occupied", Channel: "news"},
		{Name: "channel_vacated", Channel: "news"},
		{Name: "channel_occupied", Channel: "news"},
		{Name: "channel_occupied", Channel: "presence-r"},
		{Name: "member_added", Channel: "presence-r", UserID: "u1"},
		{Name: "member_added", Channel: "presence-r", UserID: "u2"},
		{Name: "member_removed", Channel: "presence-r", UserID: "u1"},
	})
	// The member lists as of the batch: the refused join gets its refusal,
	// the others the members.
	if rep := g.membersFor("a", "presence-r", "1.5", seq); rep.Status != presence.StatusLimit {
		t.Fatalf("the third member's join: %+v, want limit", rep)
	}
	rep := g.membersFor("a", "presence-r", "1.4", seq)
	if rep.Status != presence.StatusOK || len(rep.Members) != 1 || rep.Members["u2"] == nil {
		t.Fatalf("the second member's join: %+v, want ok with u2", rep)
	}
}
