package hub

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/internal/replay"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/events/eventstest"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/position"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// streamEnv is an embedded JetStream server with one app's events stream and
// a hub with gap repair on it.
type streamEnv struct {
	t   testing.TB
	ctx context.Context
	nc  *nats.Conn
	js  jetstream.JetStream
	app *appconf.App
	h   *Hub
}

func newStreamEnv(t testing.TB, repair RepairOptions, opts ...func(*Options)) *streamEnv {
	t.Helper()
	app := eventstest.App(t, appconf.App{ID: "app"})
	srv, nc, js := eventstest.Start(t, app)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	hubConn := natstest.Connect(t, srv)
	var err error
	if repair.Engine, err = replay.New(hubConn, replay.Options{}); err != nil {
		t.Fatal(err)
	}
	opt := Options{Linger: 50 * time.Millisecond, Repair: repair}
	for _, o := range opts {
		o(&opt)
	}
	h := New(hubConn, opt)
	t.Cleanup(h.Close)
	return &streamEnv{t: t, ctx: ctx, nc: nc, js: js, app: app, h: h}
}

func (e *streamEnv) publish(channel, data, exclude string) uint64 {
	e.t.Helper()
	ev := events.Event{AppID: e.app.ID, Channel: channel, Name: "e", Data: data, ExcludeSocketID: exclude}
	ack, err := e.js.PublishMsg(e.ctx, ev.Msg())
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// cut drops the channel's live subscription, as a lost connection would:
// what is stored meanwhile never reaches the hub live. mend puts it back.
func (e *streamEnv) cut(channel string) (mend func()) {
	e.t.Helper()
	live := names.LiveSubject(e.app.ID, channel)
	sh := e.h.shardFor(live)
	sh.mu.Lock()
	c := sh.channels[live]
	sub := c.liveSub
	sh.mu.Unlock()
	if err := sub.Unsubscribe(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.h.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		e.t.Helper()
		s, err := e.h.nc.ChanSubscribe(live, sh.in)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := e.h.nc.Flush(); err != nil {
			e.t.Fatal(err)
		}
		sh.mu.Lock()
		c.liveSub = s
		sh.mu.Unlock()
	}
}

func frames(data ...string) []string {
	out := make([]string, len(data))
	for i, d := range data {
		out[i] = `{"event":"e","channel":"orders","data":"` + d + `"}`
	}
	return out
}

func waitFrames(t *testing.T, r *recorder, want []string) {
	t.Helper()
	eventually(t, "frames "+strings.Join(want, " "), func() bool { return len(r.got()) >= len(want) })
	time.Sleep(20 * time.Millisecond) // nothing more must follow
	if got := r.got(); !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGapRepair(t *testing.T) {
	tests := []struct {
		name string
		// after the cut: what is stored while the live subscription is
		// gone, then what is stored once it is back.
		lost, after []string
	}{
		{"a hole shown by the next event", []string{"2", "3"}, []string{"4"}},
		{"the last event of a burst", []string{"2"}, nil},
		{"a long hole", []string{"2", "3", "4", "5", "6", "7", "8", "9"}, []string{"10", "11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recovered := prometheus.NewCounter(prometheus.CounterOpts{Name: "recovered"})
			e := newStreamEnv(t, RepairOptions{Tick: 20 * time.Millisecond, TailCheck: 40 * time.Millisecond,
				TailWindow: 2 * time.Second, Recovered: recovered})
			r := &recorder{id: "1.1"}
			if err := e.h.Subscribe(e.app.ID, "orders", r, nil); err != nil {
				t.Fatal(err)
			}
			e.publish("orders", "1", "")
			waitFrames(t, r, frames("1"))
			mend := e.cut("orders")
			for _, d := range tt.lost {
				e.publish("orders", d, "")
			}
			mend()
			for _, d := range tt.after {
				e.publish("orders", d, "")
			}
			want := append(append([]string{"1"}, tt.lost...), tt.after...)
			waitFrames(t, r, frames(want...))
			// Tail checks may read an event before its live copy arrives:
			// at least the lost ones came from the stream.
			if got := testutil.ToFloat64(recovered); got < float64(len(tt.lost)) {
				t.Fatalf("recovered %v events from the stream, want at least %d", got, len(tt.lost))
			}
		})
	}
}

// slowSub is a subscriber whose frames take a while to queue, so that the
// dispatcher falls behind NATS.
type slowSub struct{ recorder }

func (s *slowSub) Send(f []byte) bool {
	time.Sleep(2 * time.Millisecond)
	return s.recorder.Send(f)
}

// A dispatcher that falls behind makes NATS drop live messages (a slow
// consumer): the drops are seen and the channel's tail is read. A queue
// longer than one shows that a full queue is noticed by the dispatcher,
// which is what has the drop counts read.
func TestGapRepairAfterSlowConsumerDrops(t *testing.T) {
	for _, queue := range []int{1, 8} {
		t.Run("queue "+strconv.Itoa(queue), func(t *testing.T) { testGapRepairAfterSlowConsumerDrops(t, queue) })
	}
}

func testGapRepairAfterSlowConsumerDrops(t *testing.T, queue int) {
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
	e := newStreamEnv(t, RepairOptions{Tick: 20 * time.Millisecond, TailWindow: time.Millisecond},
		func(o *Options) {
			o.Shards, o.ShardQueue, o.NATSDropped, o.DropCheck = 1, queue, dropped, 10*time.Millisecond
		})
	e.h.nc.SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}) // expected: slow consumer
	r := &slowSub{recorder{id: "1.1"}}
	if err := e.h.Subscribe(e.app.ID, "orders", r, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // past the checks of a new channel
	var want []string
	for i := range 100 {
		ev := events.Event{AppID: e.app.ID, Channel: "orders", Name: "e", Data: strconv.Itoa(i)}
		if _, err := e.js.PublishMsgAsync(ev.Msg()); err != nil {
			t.Fatal(err)
		}
		want = append(want, strconv.Itoa(i))
	}
	<-e.js.PublishAsyncComplete()
	eventually(t, "every event", func() bool { return len(r.got()) >= len(want) })
	waitFrames(t, &r.recorder, frames(want...))
	if testutil.ToFloat64(dropped) == 0 {
		t.Fatal("NATS dropped nothing: the test did not make a slow consumer")
	}
}

// A quiet hub looks at no channel in its ticks: the new ones once, at the
// tick after their subscription, then only those with live traffic.
func TestQuietChannelsAreNotLookedAt(t *testing.T) {
	e := newStreamEnv(t, RepairOptions{Tick: 10 * time.Millisecond, TailCheck: 20 * time.Millisecond, TailWindow: 40 * time.Millisecond})
	const n = 100
	for i := range n {
		if err := e.h.Subscribe(e.app.ID, "orders-"+strconv.Itoa(i), &recorder{id: "1." + strconv.Itoa(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	rp := e.h.rp
	eventually(t, "the new channels' second checks", func() bool { return rp.looked.Load() >= n })
	settled := rp.ticks.Load()
	eventually(t, "ticks", func() bool { return rp.ticks.Load() >= settled+10 })
	if looked := rp.looked.Load(); looked != n {
		t.Fatalf("the ticks looked at %d channels, want the %d new ones once", looked, n)
	}

	r := &recorder{id: "2.1"}
	if err := e.h.Subscribe(e.app.ID, "orders-0", r, nil); err != nil {
		t.Fatal(err)
	}
	e.publish("orders-0", "x", "")
	eventually(t, "the live event", func() bool { return len(r.got()) == 1 })
	// The channel with traffic is looked at in the tail checks of its
	// window, then no more.
	eventually(t, "a tail check of the channel with traffic", func() bool { return rp.looked.Load() > n })
	eventually(t, "the end of its window", func() bool {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		return len(rp.active) == 0
	})
	before := rp.looked.Load()
	ticks := rp.ticks.Load()
	eventually(t, "ticks", func() bool { return rp.ticks.Load() >= ticks+10 })
	if looked := rp.looked.Load() - before; looked != 0 {
		t.Fatalf("the ticks of a quiet hub looked at %d channels", looked)
	}
}

// A channel subscribed after events were stored delivers only what follows.
func TestNewChannelStartsAtItsCurrentPosition(t *testing.T) {
	e := newStreamEnv(t, RepairOptions{Tick: 20 * time.Millisecond, TailCheck: 40 * time.Millisecond})
	e.publish("orders", "old", "")
	r := &recorder{id: "1.1"}
	if err := e.h.Subscribe(e.app.ID, "orders", r, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past a few tail checks
	e.publish("orders", "new", "")
	waitFrames(t, r, frames("new"))
}

// A stream deleted and made again counts from 1: the hub follows it rather
// than dropping its events as old.
func TestRecreatedStream(t *testing.T) {
	e := newStreamEnv(t, RepairOptions{})
	r := &recorder{id: "1.1"}
	if err := e.h.Subscribe(e.app.ID, "orders", r, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"1", "2", "3"} {
		e.publish("orders", d, "")
	}
	waitFrames(t, r, frames("1", "2", "3"))
	if err := e.js.DeleteStream(e.ctx, names.EventsStream(e.app.ID)); err != nil {
		t.Fatal(err)
	}
	// The server may still be removing the old store for a moment.
	eventually(t, "the stream to be made again", func() bool {
		_, err := events.EnsureStream(e.ctx, e.js, e.app, events.StreamOptions{})
		return err == nil
	})
	time.Sleep(10 * time.Millisecond) // a later store time than event 3
	e.publish("orders", "4", "")
	waitFrames(t, r, frames("1", "2", "3", "4"))
}

// target is an EventSubscriber that records what it gets.
type target struct {
	recorder
	epoch position.Epoch
}

func (t *target) Deliver(ev *Event) {
	t.mu.Lock()
	t.frames = append(t.frames, string(ev.PositionFrame(t.epoch)))
	t.mu.Unlock()
}

func TestEventSubscribers(t *testing.T) {
	e := newStreamEnv(t, RepairOptions{})
	plain := &recorder{id: "1.1"}
	a, b := &target{recorder: recorder{id: "1.2"}, epoch: 7}, &target{recorder: recorder{id: "1.3"}, epoch: 7}
	if err := e.h.Subscribe(e.app.ID, "private-orders", plain, nil); err != nil {
		t.Fatal(err)
	}
	for _, tg := range []*target{a, b} {
		if err := e.h.SubscribeEvents(e.app.ID, "private-orders", tg, tg); err != nil {
			t.Fatal(err)
		}
	}
	s1 := e.publish("private-orders", "1", "")
	s2 := e.publish("private-orders", "2", "1.2")
	// Client events travel apart from stored ones, with no order between
	// them: the client event goes once the stored ones arrived.
	eventually(t, "stored events", func() bool { return len(a.got()) == 1 && len(b.got()) == 2 })
	client := events.ClientEvent{AppID: e.app.ID, Channel: "private-orders", Name: "client-x", Data: []byte(`{}`), SocketID: "1.1"}
	if err := e.nc.PublishMsg(client.Msg()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "client event", func() bool { return len(a.got()) == 2 && len(b.got()) == 3 })
	e.h.Local(e.app.ID, "private-orders", []byte("member"), "1.3")

	// Positions end with the store time, which the test does not know:
	// frames are compared up to it.
	at := func(seq uint64, data string) string {
		p := position.Position{Epoch: 7, Seq: seq}.String()
		return `{"event":"e","channel":"private-orders","data":"` + data + `","position":"` + p[:strings.LastIndexByte(p, '.')+1]
	}
	clientFrame := `{"event":"client-x","channel":"private-orders","data":"{}"}`
	check := func(who string, got []string, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s got %q, want %d frames", who, got, len(want))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s[%d] = %s, want %s…", who, i, got[i], want[i])
			}
		}
	}
	check("a", a.got(), []string{at(s1, "1"), clientFrame, "member"})
	check("b", b.got(), []string{at(s1, "1"), at(s2, "2"), clientFrame})
	check("plain", plain.got(), []string{`{"event":"e","channel":"private-orders","data":"1"}`,
		`{"event":"e","channel":"private-orders","data":"2"}`, "member"})

	e.h.Unsubscribe(e.app.ID, "private-orders", a)
	e.publish("private-orders", "3", "")
	eventually(t, "event 3", func() bool { return len(b.got()) == 4 })
	if n := len(a.got()); n != 3 {
		t.Fatalf("an unsubscribed target got %d frames", n)
	}
}

// trackedMsg is the benchmarks' live event with the headers a stream's
// RePublish adds, and the sequence numbers of n such messages: seqs[i+1]
// follows seqs[i], continuing the stream's (empty here) as RePublish
// numbers them.
func trackedMsg(n int) (m *nats.Msg, seqs []string) {
	m = liveMsg("app", "news", "App\\Events\\Updated", `{"id":42,"status":"shipped","total":"19.99"}`, "")
	m.Header.Set(names.HeaderNatsStream, names.EventsStream("app"))
	m.Header.Set("Nats-Time-Stamp", time.Now().UTC().Format(time.RFC3339Nano))
	seqs = make([]string, n+1)
	for i := range seqs {
		seqs[i] = strconv.Itoa(i)
	}
	return m, seqs
}

// deliverNth delivers m as the i-th message of seqs (from 0).
func deliverNth(sh *shard, m *nats.Msg, seqs []string, i int) {
	m.Header.Set(names.HeaderNatsSequence, seqs[i+1])
	m.Header.Set(names.HeaderNatsLastSequence, seqs[i])
	sh.deliver(m)
}

// BenchmarkFanOutTracked is BenchmarkFanOut with gap repair on and the
// headers a stream's RePublish adds: the cost of tracking sequences on the
// live path when nothing is missing.
func BenchmarkFanOutTracked(b *testing.B) {
	e := newStreamEnv(b, RepairOptions{})
	h := e.h
	const subscribers = 1000
	var written atomic.Int64
	subscribeWriters(b, h, subscribers, &written)
	m, seqs := trackedMsg(b.N)
	sh := h.shardFor(m.Subject)
	frame := protocol.EventFrame("App\\Events\\Updated", "news", string(m.Data), nil)
	frameLen := int64(len(frame) + 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		deliverNth(sh, m, seqs, i)
		want := int64(i+1) * subscribers * frameLen
		for written.Load() < want {
			time.Sleep(10 * time.Microsecond)
		}
	}
}

// nopSub is a subscriber that drops what it is sent.
type nopSub string

func (s nopSub) SocketID() string { return string(s) }
func (nopSub) Send([]byte) bool   { return true }

// BenchmarkDeliver is the dispatcher's own cost per live message, to one
// subscriber that does nothing with it: as a plain relay, and with gap
// repair tracking sequences (nothing missing).
func BenchmarkDeliver(b *testing.B) {
	for _, tracked := range []bool{false, true} {
		name := "plain"
		if tracked {
			name = "tracked"
		}
		b.Run(name, func(b *testing.B) {
			var h *Hub
			if tracked {
				h = newStreamEnv(b, RepairOptions{}).h
			} else {
				srv := natstest.Start(b)
				h = New(natstest.Connect(b, srv), Options{})
				b.Cleanup(h.Close)
			}
			if err := h.Subscribe("app", "news", nopSub("1.1"), nil); err != nil {
				b.Fatal(err)
			}
			m, seqs := trackedMsg(b.N)
			sh := h.shardFor(m.Subject)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				deliverNth(sh, m, seqs, i)
			}
		})
	}
}
