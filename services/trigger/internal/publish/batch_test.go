package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchFixture is a Publisher on an embedded JetStream, its app's streams
// ensured, and a second connection that sees every message published to
// the events subjects (with its reply subject) and every live RePublish.
type batchFixture struct {
	ctx     context.Context
	proxy   *natstest.Proxy // between the Publisher and NATS
	retries atomic.Int64
	app     *appconf.App
	p       *Publisher
	js      jetstream.JetStream
	sent    *nats.Subscription // the events subjects, as published
	live    *nats.Subscription // the RePublish to the live subjects
}

func newBatchFixture(t *testing.T, app appconf.App) *batchFixture {
	t.Helper()
	srv := natstest.Start(t)
	reg, err := appconf.NewRegistry([]appconf.App{app})
	if err != nil {
		t.Fatal(err)
	}
	f := &batchFixture{}
	f.app, _ = reg.ByID(app.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	f.ctx = ctx
	f.proxy = natstest.NewProxy(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	pc, err := nats.Connect(f.proxy.URL(), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pc.Close)
	if f.p, err = New(pc, events.StreamOptions{}, slog.Default(), Options{Retried: func() { f.retries.Add(1) }}); err != nil {
		t.Fatal(err)
	}
	if err := f.p.Ensure(ctx, f.app); err != nil {
		t.Fatal(err)
	}
	var nc *nats.Conn
	nc, f.js = natstest.JetStream(t, srv)
	if f.sent, err = nc.SubscribeSync(names.EventsSubjects(f.app.ID)); err != nil {
		t.Fatal(err)
	}
	if f.live, err = nc.SubscribeSync(names.Prefix + ".live." + names.EncodeToken(f.app.ID) + ".*"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

// queued publishes each of reqs (one request's events each) at once while
// the app's batcher holds them: a batch in flight, as far as the batcher
// knows. Once all are queued it lets them go, as the end of that batch
// would, runs during (if any) and returns each request's error.
func (f *batchFixture) queued(t *testing.T, reqs [][]events.Event, during ...func()) []error {
	t.Helper()
	b := f.p.batchers[f.app.ID]
	if b == nil {
		t.Fatal("the app's stream takes no fast batches")
	}
	b.mu.Lock()
	b.busy = true
	b.mu.Unlock()
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, evs := range reqs {
		wg.Go(func() { errs[i] = f.p.Publish(f.ctx, f.app, evs) })
		// One at a time, so that the queue keeps the order of reqs.
		waitFor(t, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return len(b.queue) == i+1
		})
	}
	b.mu.Lock()
	b.queue[0].done <- lead
	b.mu.Unlock()
	for _, d := range during {
		d()
	}
	wg.Wait()
	return errs
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// replies returns the reply subjects of the next n messages sent.
func (f *batchFixture) replies(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		m, err := f.sent.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d of %d sent: %v", len(out)+1, n, err)
		}
		out = append(out, m.Reply)
	}
	return out
}

// stored returns the data of every message in the events stream, in order.
func (f *batchFixture) stored(t *testing.T) []string {
	t.Helper()
	s, err := f.js.Stream(f.ctx, names.EventsStream(f.app.ID))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(f.ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(m.Data))
	}
	return out
}

func event(app, channel, data, id string) events.Event {
	return events.Event{AppID: app, Channel: channel, Name: "e", Data: data, MsgID: id}
}

// The events of requests queued behind a store in flight go as one fast
// batch: one reply subject each, numbered in order, started, appended to and
// committed; every request is answered stored, every event is in the
// stream in the order sent and republished to its live subject. Events of
// one channel past the channel's limit push the oldest out, as one by one.
func TestQueuedRequestsGoAsOneBatch(t *testing.T) {
	f := newBatchFixture(t, appconf.App{ID: "app1", Key: "k", Secret: "a-long-test-secret-value", ReplayMaxEvents: 3})
	var reqs [][]events.Event
	for i := range 5 {
		// Request i: channel c<i> and the shared channel.
		reqs = append(reqs, []events.Event{
			event("app1", fmt.Sprintf("c%d", i), fmt.Sprintf("c%d", i), ""),
			event("app1", "shared", fmt.Sprintf("shared-%d", i), ""),
		})
	}
	for i, err := range f.queued(t, reqs) {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	var batchID string
	for i, r := range f.replies(t, 10) {
		// <inbox>.<batch id>.<flow>.fail.<seq>.<op>.$FI
		parts := strings.Split(r, ".")
		if len(parts) < 7 || parts[len(parts)-1] != "$FI" {
			t.Fatalf("message %d: reply %q is not a fast batch's", i+1, r)
		}
		id, gap, seq, op := parts[len(parts)-6], parts[len(parts)-4], parts[len(parts)-3], parts[len(parts)-2]
		if i == 0 {
			batchID = id
		}
		wantOp := map[int]string{0: "0", 9: "2"}[i]
		if wantOp == "" {
			wantOp = "1"
		}
		if id != batchID || gap != "fail" || seq != fmt.Sprint(i+1) || op != wantOp {
			t.Errorf("message %d: reply %q: batch %s, gap %s, seq %s, op %s; want batch %s, fail, %d, %s",
				i+1, r, id, gap, seq, op, batchID, i+1, wantOp)
		}
	}
	want := []string{"c0", "c1", "c2", "shared-2", "c3", "shared-3", "c4", "shared-4"}
	if got := f.stored(t); !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v (3 per channel at most)", got, want)
	}
	var live []string
	for range 10 {
		m, err := f.live.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("live message %d: %v", len(live)+1, err)
		}
		live = append(live, string(m.Data))
	}
	wantLive := []string{"c0", "shared-0", "c1", "shared-1", "c2", "shared-2", "c3", "shared-3", "c4", "shared-4"}
	if !slices.Equal(live, wantLive) {
		t.Errorf("republished %v, want %v", live, wantLive)
	}
}

// A message id the stream has seen is stored once, first in a batch (where
// the stream ends the batch at it) or later; the batch's other events are
// stored all the same, once each.
func TestBatchWithStoredMessageIDs(t *testing.T) {
	f := newBatchFixture(t, appconf.App{ID: "app1", Key: "k", Secret: "a-long-test-secret-value"})
	if err := f.p.Publish(f.ctx, f.app, []events.Event{
		event("app1", "a", "first", "id-a"), event("app1", "b", "first", "id-b"),
	}); err != nil {
		t.Fatal(err)
	}
	errs := f.queued(t, [][]events.Event{
		{event("app1", "a", "again", "id-a")},
		{event("app1", "c", "new-1", "")},
		{event("app1", "b", "again", "id-b")},
		{event("app1", "d", "new-2", "")},
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	got := f.stored(t)
	slices.Sort(got)
	if want := []string{"first", "first", "new-1", "new-2"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v", got, want)
	}
}

// An event the stream refuses (larger than its message limit) cuts the
// batch: its request gets JetStream's error, and the events sent with it,
// before and after, are stored once each.
func TestRefusedEventCutsTheBatch(t *testing.T) {
	f := newBatchFixture(t, appconf.App{ID: "app1", Key: "k", Secret: "a-long-test-secret-value", MaxEventBytes: 100})
	huge := strings.Repeat("x", 10_000)
	errs := f.queued(t, [][]events.Event{
		{event("app1", "a", "before", "")},
		{event("app1", "b", huge, "")},
		{event("app1", "c", "after-1", ""), event("app1", "d", "after-2", "")},
	})
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("requests with storable events failed: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil || Unavailable(errs[1]) {
		t.Fatalf("the oversized event's request: %v, want JetStream's refusal", errs[1])
	}
	got := f.stored(t)
	slices.Sort(got)
	if want := []string{"after-1", "after-2", "before"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v", got, want)
	}
}

// A batch lost on its way (held by the path to NATS, then dropped with the
// connection, as a node lost in the middle of a batch or a leader election
// loses it) gets no acknowledgement: once its try's time is up its events
// are sent again one by one, and stored once the connection is back; each
// event once, a request's events of one channel in order.
func TestLostBatchIsRetriedAndStoredOnce(t *testing.T) {
	f := newBatchFixture(t, appconf.App{ID: "app1", Key: "k", Secret: "a-long-test-secret-value"})
	f.proxy.SetPaused(true)
	errs := f.queued(t, [][]events.Event{
		{event("app1", "a", "a1", ""), event("app1", "b", "b1", "")},
		{event("app1", "c", "c1", ""), event("app1", "c", "c2", ""), event("app1", "c", "c3", "")},
		{event("app1", "d", "d1", "")},
	}, func() {
		// The batch timed out and its events are being sent one by one:
		// drop everything held, and let the connection come back.
		waitFor(t, func() bool { return f.retries.Load() > 0 })
		f.proxy.SetCut(true)
		f.proxy.SetPaused(false)
		f.proxy.SetCut(false)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	got := f.stored(t)
	var c []string
	for _, d := range got {
		if strings.HasPrefix(d, "c") {
			c = append(c, d)
		}
	}
	if !slices.Equal(c, []string{"c1", "c2", "c3"}) {
		t.Errorf("channel c holds %v, want c1 c2 c3 in order", c)
	}
	slices.Sort(got)
	if want := []string{"a1", "b1", "c1", "c2", "c3", "d1"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want each event once: %v", got, want)
	}
}

func TestPubAckCount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{`{"stream":"s","seq":12,"batch":"b1","count":5}`, 5, true},
		{`{"stream":"s","seq":12,"duplicate": true,"batch":"b1","count":1}`, 1, true},
		{`{"stream":"s","seq":12}`, 0, false},
		{`{"stream":"s","count":x}`, 0, false},
	} {
		if got, ok := pubAckCount([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("pubAckCount(%s) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
