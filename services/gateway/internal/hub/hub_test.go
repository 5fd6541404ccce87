package hub

import (
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/internal/ws"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// recorder is a Subscriber that keeps what it is sent.
type recorder struct {
	id     string
	mu     sync.Mutex
	frames []string
}

func (r *recorder) SocketID() string { return r.id }
func (r *recorder) Send(f []byte) bool {
	r.mu.Lock()
	r.frames = append(r.frames, string(f))
	r.mu.Unlock()
	return true
}
func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames...)
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, poll.Patience, what, cond)
}

func liveMsg(app, channel, event, data, exclude string) *nats.Msg {
	m := nats.NewMsg(names.LiveSubject(app, channel))
	m.Header.Set(names.HeaderEvent, event)
	if exclude != "" {
		m.Header.Set(names.HeaderExclude, exclude)
	}
	m.Data = []byte(data)
	return m
}

func TestFanOut(t *testing.T) {
	srv := natstest.Start(t)
	h := New(natstest.Connect(t, srv), Options{Linger: 50 * time.Millisecond})
	t.Cleanup(h.Close)
	pub := natstest.Connect(t, srv)

	a, b, other := &recorder{id: "1.1"}, &recorder{id: "1.2"}, &recorder{id: "1.3"}
	for _, s := range []*recorder{a, b} {
		if err := h.Subscribe("app", "news", s, []byte("first-"+s.id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Subscribe("app", "other", other, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*nats.Msg{
		liveMsg("app", "news", "e", "1", ""),
		liveMsg("app", "news", "e", "2", "1.1"),
		liveMsg("app", "news", "", "no name: dropped", ""),
		events.ClientEvent{AppID: "app", Channel: "news", Name: "client-x", Data: []byte(`{"a":1}`), SocketID: "1.2", UserID: `u"1`}.Msg(),
		liveMsg("app", "news", "e", "3", ""),
	} {
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// The client event comes on a subscription of its own: no order with
	// the channel's stored events (in production another publisher's).
	clientFrame := `{"event":"client-x","channel":"news","data":"{\"a\":1}","user_id":"u\"1"}`
	wantA := []string{
		"first-1.1",
		`{"event":"e","channel":"news","data":"1"}`,
		`{"event":"e","channel":"news","data":"3"}`,
		clientFrame,
	}
	wantB := []string{
		"first-1.2",
		`{"event":"e","channel":"news","data":"1"}`,
		`{"event":"e","channel":"news","data":"2"}`,
		`{"event":"e","channel":"news","data":"3"}`,
	}
	eventually(t, "all frames", func() bool { return len(a.got()) == len(wantA) && len(b.got()) == len(wantB) })
	gotA := a.got()
	if i := slices.Index(gotA, clientFrame); i > 0 {
		gotA = append(slices.Delete(gotA, i, i+1), clientFrame)
	}
	for i, w := range wantA {
		if g := gotA[i]; g != w {
			t.Errorf("a[%d] = %s, want %s", i, g, w)
		}
	}
	for i, w := range wantB {
		if g := b.got()[i]; g != w {
			t.Errorf("b[%d] = %s, want %s", i, g, w)
		}
	}
	if n := len(other.got()); n != 0 {
		t.Errorf("a subscriber of another channel got %d frames", n)
	}

	h.Local("app", "news", []byte("local"), "1.2")
	if g := a.got(); g[len(g)-1] != "local" {
		t.Errorf("Local did not reach a: %v", g)
	}
	if g := b.got(); g[len(g)-1] == "local" {
		t.Error("Local reached the excluded socket")
	}
}

func TestLinger(t *testing.T) {
	srv := natstest.Start(t)
	h := New(natstest.Connect(t, srv), Options{Linger: 100 * time.Millisecond})
	t.Cleanup(h.Close)
	pub := natstest.Connect(t, srv)
	a := &recorder{id: "1.1"}
	if err := h.Subscribe("app", "news", a, nil); err != nil {
		t.Fatal(err)
	}
	if h.Channels() != 1 {
		t.Fatalf("channels = %d", h.Channels())
	}
	h.Unsubscribe("app", "news", a)
	// Coming back within the linger keeps the channel and its subscription.
	b := &recorder{id: "1.2"}
	if err := h.Subscribe("app", "news", b, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // past the first linger
	if h.Channels() != 1 {
		t.Fatal("channel dropped while it had a subscriber")
	}
	if err := pub.PublishMsg(liveMsg("app", "news", "e", "1", "")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivery after resubscribe", func() bool { return len(b.got()) == 1 })
	if len(a.got()) != 0 {
		t.Error("an unsubscribed subscriber got a frame")
	}
	h.Unsubscribe("app", "news", b)
	h.Unsubscribe("app", "news", b) // twice is harmless
	eventually(t, "the channel to expire", func() bool { return h.Channels() == 0 })
}

func TestClose(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	h := New(nc, Options{})
	if err := h.Subscribe("app", "news", &recorder{id: "1.1"}, nil); err != nil {
		t.Fatal(err)
	}
	if nc.NumSubscriptions() != 2 {
		t.Fatalf("subscriptions = %d, want 2", nc.NumSubscriptions())
	}
	h.Close()
	h.Close()
	if nc.NumSubscriptions() != 0 {
		t.Errorf("subscriptions after Close = %d", nc.NumSubscriptions())
	}
	if err := h.Subscribe("app", "news", &recorder{id: "1.2"}, nil); err != ErrClosed {
		t.Errorf("Subscribe after Close = %v", err)
	}
	h.Unsubscribe("app", "news", &recorder{id: "1.1"})
	h.Local("app", "news", []byte("x"), "")
}

func TestConcurrentSubscribers(t *testing.T) {
	srv := natstest.Start(t)
	h := New(natstest.Connect(t, srv), Options{Linger: time.Millisecond})
	t.Cleanup(h.Close)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &recorder{id: "1." + strconv.Itoa(i)}
			for j := range 50 {
				ch := "c" + strconv.Itoa(j%3)
				if err := h.Subscribe("app", ch, r, nil); err != nil {
					t.Error(err)
					return
				}
				h.Local("app", ch, []byte("x"), "")
				h.Unsubscribe("app", ch, r)
			}
		}()
	}
	wg.Wait()
	eventually(t, "every channel to expire", func() bool { return h.Channels() == 0 })
}

// discardConn is a net.Conn that drops what is written and counts it.
type discardConn struct {
	net.Conn // nil: only the methods below are used
	n        *atomic.Int64
}

func (c discardConn) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return len(b), nil
}
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) Close() error                     { return nil }

type writerSub struct {
	id string
	*ws.Writer
}

func (s writerSub) SocketID() string { return s.id }

// subscribeWriters subscribes n writers to app's channel news, each adding
// what it writes to written.
func subscribeWriters(b *testing.B, h *Hub, n int, written *atomic.Int64) {
	for i := range n {
		w := ws.NewWriter(discardConn{n: written}, ws.Options{})
		b.Cleanup(w.Abort)
		if err := h.Subscribe("app", "news", writerSub{strconv.Itoa(i), w}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFanOut delivers one event to 1,000 local subscribers, each with
// its own writer goroutine, and waits until every writer has written it.
func BenchmarkFanOut(b *testing.B) {
	srv := natstest.Start(b)
	h := New(natstest.Connect(b, srv), Options{})
	b.Cleanup(h.Close)
	const subscribers = 1000
	var written atomic.Int64
	subscribeWriters(b, h, subscribers, &written)
	m := liveMsg("app", "news", "App\\Events\\Updated", `{"id":42,"status":"shipped","total":"19.99"}`, "")
	sh := h.shardFor(m.Subject)
	frame := protocol.EventFrame("App\\Events\\Updated", "news", string(m.Data), nil)
	if len(frame) >= 126 {
		b.Fatal("the benchmark counts 2-byte frame headers")
	}
	frameLen := int64(len(frame) + 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sh.deliver(m)
		want := int64(i+1) * subscribers * frameLen
		for written.Load() < want {
			time.Sleep(10 * time.Microsecond)
		}
	}
}

// A channel costs one NATS subscription: its live subject. Client events of
// every channel come on one more, made with the first channel.
func TestOneSubscriptionPerChannel(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv)
	h := New(nc, Options{Linger: time.Hour})
	t.Cleanup(h.Close)
	base := srv.NumSubscriptions()
	const channels = 20
	subs := make([]*recorder, channels)
	for i := range subs {
		subs[i] = &recorder{id: "1." + strconv.Itoa(i)}
		if err := h.Subscribe("app", "private-user."+strconv.Itoa(i), subs[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.NumSubscriptions() - base; got != channels+1 {
		t.Fatalf("%d NATS subscriptions for %d channels, want %d", got, channels, channels+1)
	}
	// Each channel still gets its own client events, and only those: the
	// other app's goes first, and client events are delivered in order.
	pub := natstest.Connect(t, srv)
	ev := events.ClientEvent{AppID: "other-app", Channel: "private-user.0", Name: "client-typing", Data: []byte("x"), SocketID: "2.1"}
	if err := pub.PublishMsg(ev.Msg()); err != nil {
		t.Fatal(err)
	}
	for i := range subs {
		ev := events.ClientEvent{AppID: "app", Channel: "private-user." + strconv.Itoa(i), Name: "client-typing", Data: []byte(strconv.Itoa(i)), SocketID: "2.1"}
		if err := pub.PublishMsg(ev.Msg()); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range subs {
		want := `{"event":"client-typing","channel":"private-user.` + strconv.Itoa(i) + `","data":"` + strconv.Itoa(i) + `"}`
		eventually(t, "client event "+strconv.Itoa(i), func() bool { return len(s.got()) >= 1 })
		if got := s.got(); len(got) != 1 || got[0] != want {
			t.Fatalf("subscriber %d got %q, want [%s]", i, got, want)
		}
	}
}
