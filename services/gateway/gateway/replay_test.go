package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/gateway/web"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/position"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats.go"
)

// Raw-frame tests of Herald's replay extension (docs/protocol.md, "The
// replay extension"), cache channels and gap repair.

// store publishes an event of app-1 and returns its stream sequence.
func (e *env) store(channel, name, data, exclude string) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), poll.Patience)
	defer cancel()
	ev := events.Event{AppID: "app-1", Channel: channel, Name: name, Data: data, ExcludeSocketID: exclude}
	ack, err := e.js.PublishMsg(ctx, ev.Msg())
	if err != nil {
		e.t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// storeMany publishes n events of app-1 at once, data(i) for the i-th.
func (e *env) storeMany(channel string, n int, data func(i int) string) {
	e.t.Helper()
	for i := range n {
		ev := events.Event{AppID: "app-1", Channel: channel, Name: "e", Data: data(i)}
		if _, err := e.js.PublishMsgAsync(ev.Msg()); err != nil {
			e.t.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		e.t.Fatal("async publishes not acknowledged")
	}
}

// cached stores the cache stream copy of an event, as the trigger API does
// for cache channels.
func (e *env) cached(channel, name, data string, seq uint64) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), poll.Patience)
	defer cancel()
	ev := events.Event{AppID: "app-1", Channel: channel, Name: name, Data: data}
	if _, err := e.js.PublishMsg(ctx, ev.CacheMsg(seq)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) epoch() position.Epoch {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), names.EventsStream("app-1"))
	if err != nil {
		e.t.Fatal(err)
	}
	return position.EpochOf(s.CachedInfo().Created)
}

// subscribeWith sends pusher:subscribe with the extension's members,
// signed for private and presence channels.
func (c *client) subscribeWith(app *appconf.App, channel string, extra map[string]any) {
	c.t.Helper()
	d := map[string]any{"channel": channel}
	channelData, _ := extra["channel_data"].(string)
	if strings.HasPrefix(channel, "private-") || strings.HasPrefix(channel, "presence-") {
		d["auth"] = signing.ChannelAuth(app.Key, app.Secret, c.socketID, channel, channelData)
	}
	for k, v := range extra {
		d[k] = v
	}
	c.send("pusher:subscribe", "", d)
}

// pos returns a frame's top-level position, "" when it has none.
func (f frame) pos(t testing.TB) string {
	t.Helper()
	var p struct {
		Position *string `json:"position"`
	}
	if err := json.Unmarshal([]byte(f.raw), &p); err != nil {
		t.Fatal(err)
	}
	if p.Position == nil {
		return ""
	}
	return *p.Position
}

// dataPos returns the position member of a frame's data (a JSON string).
func (f frame) dataPos(t testing.TB) string {
	t.Helper()
	var d struct {
		Position string `json:"position"`
	}
	if err := json.Unmarshal([]byte(f.str(t)), &d); err != nil {
		t.Fatalf("data of %s: %v", f.raw, err)
	}
	return d.Position
}

func seqOf(t testing.TB, p string) uint64 {
	t.Helper()
	v, err := position.Parse(p)
	if err != nil {
		t.Fatalf("position %q: %v", p, err)
	}
	return v.Seq
}

// resumedData decodes herald:resumed.
func resumedData(t testing.TB, f frame) (int, string) {
	t.Helper()
	var d struct {
		Replayed *int   `json:"replayed"`
		Position string `json:"position"`
	}
	if err := json.Unmarshal([]byte(f.str(t)), &d); err != nil || d.Replayed == nil {
		t.Fatalf("herald:resumed data %s: %v", f.Data, err)
	}
	return *d.Replayed, d.Position
}

func (c *client) expectResumeFailed(channel, reason string) {
	c.t.Helper()
	f := c.expect("herald:resume_failed")
	if f.Channel != channel || f.str(c.t) != `{"reason":"`+reason+`"}` {
		c.t.Fatalf("got %s, want reason %s", f.raw, reason)
	}
}

// readEvents reads n frames of event e and returns their data.
func (c *client) readEvents(n int) ([]string, []frame) {
	c.t.Helper()
	var data []string
	var fs []frame
	for range n {
		f := c.expect("e")
		data = append(data, f.str(c.t))
		fs = append(fs, f)
	}
	return data, fs
}

func numbers(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func TestPositionsOnlyForOptedInSubscriptions(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	plain, opted := connect(t, e.hs, "key-1"), connect(t, e.hs, "key-1")
	plain.subscribeWith(app, "news", nil)
	if f := plain.expect("pusher_internal:subscription_succeeded"); f.raw != `{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}` {
		t.Fatalf("plain succeeded %s", f.raw)
	}
	opted.subscribeWith(app, "news", map[string]any{"positions": true})
	ok := opted.expect("pusher_internal:subscription_succeeded")
	start := ok.dataPos(t)
	if seqOf(t, start) != 0 {
		t.Fatalf("succeeded position %s on an empty stream", start)
	}

	seq := e.store("news", "e", `{"n":1}`, "")
	if f := plain.expect("e"); f.raw != `{"event":"e","channel":"news","data":"{\"n\":1}"}` {
		t.Fatalf("plain frame changed: %s", f.raw)
	}
	f := opted.expect("e")
	want := `{"event":"e","channel":"news","data":"{\"n\":1}","position":"`
	if !strings.HasPrefix(f.raw, want) || seqOf(t, f.pos(t)) != seq {
		t.Fatalf("opted-in frame %s, want position at %d", f.raw, seq)
	}
	// Exclusion works the same for both kinds.
	e.store("news", "e", `{"n":2}`, plain.socketID)
	if f := opted.expect("e"); f.pos(t) == "" {
		t.Fatalf("no position: %s", f.raw)
	}
	if got := plain.ping(); len(got) != 0 {
		t.Fatalf("the excluded socket got %v", got)
	}

	// A subscription that opts in later starts at the channel's position.
	late := connect(t, e.hs, "key-1")
	late.subscribeWith(app, "news", map[string]any{"positions": true})
	if p := late.expect("pusher_internal:subscription_succeeded").dataPos(t); seqOf(t, p) != seq+1 {
		t.Fatalf("late succeeded position %s, want seq %d", p, seq+1)
	}
}

func TestResume(t *testing.T) {
	for _, other := range []bool{false, true} {
		name := "same gateway"
		if other {
			name = "other gateway"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			app := e.app("app-1")
			hs := e.hs
			if other {
				_, hs, _ = e.startGateway()
			}
			first := connect(t, e.hs, "key-1")
			first.subscribeWith(app, "private-orders", map[string]any{"positions": true})
			first.expect("pusher_internal:subscription_succeeded")
			e.store("private-orders", "e", "0", "")
			from := first.expect("e").pos(t)
			first.c.Close()

			for i := 1; i <= 5; i++ {
				e.store("private-orders", "e", strconv.Itoa(i), "")
			}
			second := connect(t, hs, "key-1")
			second.subscribeWith(app, "private-orders", map[string]any{"resume": from})
			// 20 live events race the replay.
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 6; i <= 25; i++ {
					e.store("private-orders", "e", strconv.Itoa(i), "")
				}
			})
			ok := second.expect("pusher_internal:subscription_succeeded")
			if ok.dataPos(t) != from {
				t.Fatalf("succeeded position %s, want the resume position %s", ok.dataPos(t), from)
			}
			var got []string
			var last string
			replayed := -1
			for len(got) < 25 || replayed < 0 {
				f := second.read()
				switch f.Event {
				case "e":
					got = append(got, f.str(t))
					p := f.pos(t)
					if last != "" && seqOf(t, p) <= seqOf(t, last) {
						t.Fatalf("position %s after %s", p, last)
					}
					last = p
				case "herald:resumed":
					if replayed >= 0 {
						t.Fatal("herald:resumed twice")
					}
					var p string
					replayed, p = resumedData(t, f)
					if replayed != len(got) || p != last {
						t.Fatalf("resumed %s after %d events at %s", f.raw, len(got), last)
					}
				default:
					t.Fatalf("unexpected %s", f.raw)
				}
			}
			wg.Wait()
			if replayed < 5 {
				t.Fatalf("replayed %d, want at least the 5 missed", replayed)
			}
			if !slices.Equal(got, numbers(1, 25)) {
				t.Fatalf("events %v", got)
			}
			if extra := second.ping(); len(extra) != 0 {
				t.Fatalf("more frames: %v", extra)
			}
		})
	}
}

func TestRewind(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	tests := []struct {
		name   string
		rewind int
		want   []string
	}{
		{"last three", 3, []string{"3", "4", "5"}},
		{"more than stored", 50, numbers(1, 5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := "feed-" + strconv.Itoa(tt.rewind)
			for i := 1; i <= 5; i++ {
				e.store(ch, "e", strconv.Itoa(i), "")
			}
			c := connect(t, e.hs, "key-1")
			c.subscribeWith(app, ch, map[string]any{"rewind": tt.rewind})
			ok := c.expect("pusher_internal:subscription_succeeded")
			got, fs := c.readEvents(len(tt.want))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
			if p := seqOf(t, ok.dataPos(t)); p != seqOf(t, fs[0].pos(t))-1 {
				t.Fatalf("succeeded at %d, want just before the first rewound event %s", p, fs[0].pos(t))
			}
			n, p := resumedData(t, c.expect("herald:resumed"))
			if n != len(tt.want) || p != fs[len(fs)-1].pos(t) {
				t.Fatalf("resumed %d at %s", n, p)
			}
			e.store(ch, "live", "6", "")
			c.expectEvent("live", ch, "6")
		})
	}
}

func TestResumeFailed(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	e.store("orders", "e", "old", "")
	valid, err := position.Parse(func() string {
		c := connect(t, e.hs, "key-1")
		c.subscribeWith(app, "orders", map[string]any{"positions": true})
		return c.expect("pusher_internal:subscription_succeeded").dataPos(t)
	}())
	if err != nil {
		t.Fatal(err)
	}
	// A position before an event the channel's cap (1,000) dropped.
	capped := position.Position{Epoch: e.epoch(), Seq: e.store("capped", "e", "0", "")}
	e.storeMany("capped", 1001, strconv.Itoa)

	tests := []struct {
		name, channel string
		data          map[string]any
		reason        string
	}{
		{"unreadable position", "orders", map[string]any{"resume": "not-a-position"}, "invalid_position"},
		{"future position", "orders", map[string]any{"resume": position.Position{Epoch: valid.Epoch, Seq: 1 << 40}.String()}, "invalid_position"},
		{"another installation", "orders", map[string]any{"resume": position.Position{Epoch: valid.Epoch + 1, Seq: 1}.String()}, "history_lost"},
		{"past the channel's cap", "capped", map[string]any{"resume": capped.String()}, "window_exceeded"},
		{"rewind 0", "orders", map[string]any{"rewind": 0}, "invalid_rewind"},
		{"rewind 101", "orders", map[string]any{"rewind": 101}, "invalid_rewind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, e.hs, "key-1")
			c.subscribeWith(app, tt.channel, tt.data)
			ok := c.expect("pusher_internal:subscription_succeeded")
			c.expectResumeFailed(tt.channel, tt.reason)
			// Live starts at the channel's current position, which
			// subscription_succeeded carries.
			seq := e.store(tt.channel, "live", "x", "")
			f := c.expectEvent("live", tt.channel, "x")
			if seqOf(t, f.pos(t)) != seq || seqOf(t, ok.dataPos(t)) >= seq {
				t.Fatalf("succeeded at %s, first live event at %s", ok.dataPos(t), f.pos(t))
			}
		})
	}
	t.Run("resume wins over rewind", func(t *testing.T) {
		c := connect(t, e.hs, "key-1")
		c.subscribeWith(app, "orders", map[string]any{"resume": "bad", "rewind": 3})
		c.expect("pusher_internal:subscription_succeeded")
		c.expectResumeFailed("orders", "invalid_position")
	})
}

func TestReplayLeavesOutExcludedSockets(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	old := connect(t, e.hs, "key-1")
	old.subscribeWith(app, "private-cart", map[string]any{"positions": true})
	from := old.expect("pusher_internal:subscription_succeeded").dataPos(t)
	c := connect(t, e.hs, "key-1")
	e.store("private-cart", "e", "1", "")
	e.store("private-cart", "e", "2", old.socketID) // the old socket's toOthers()
	e.store("private-cart", "e", "3", "9.9")        // listed in socket_ids
	e.store("private-cart", "e", "4", c.socketID)   // this socket's own
	last := e.store("private-cart", "e", "5", "8.8")
	e.store("private-cart", "e", "6", "")

	c.subscribeWith(app, "private-cart", map[string]any{"resume": from, "socket_ids": []string{old.socketID, "9.9"}})
	c.expect("pusher_internal:subscription_succeeded")
	if got, _ := c.readEvents(3); !slices.Equal(got, []string{"1", "5", "6"}) {
		t.Fatalf("replayed %v", got)
	}
	c.expect("herald:resumed")

	// The last three are 4 (excluded for another socket), 5 and 6.
	r := connect(t, e.hs, "key-1")
	r.subscribeWith(app, "private-cart", map[string]any{"rewind": 3, "socket_ids": []string{"8.8"}})
	r.expect("pusher_internal:subscription_succeeded")
	if got, _ := r.readEvents(2); !slices.Equal(got, []string{"4", "6"}) {
		t.Fatalf("rewound %v", got)
	}
	n, p := resumedData(t, r.expect("herald:resumed"))
	if n != 2 || seqOf(t, p) != last+1 {
		t.Fatalf("resumed %d at %s", n, p)
	}
}

func TestPrivateResumeNeedsAuth(t *testing.T) {
	e := newEnv(t)
	e.store("private-secret", "e", "1", "")
	c := connect(t, e.hs, "key-1")
	c.send("pusher:subscribe", "", map[string]any{"channel": "private-secret", "auth": "key-1:bad", "rewind": 10})
	f := c.expect("pusher:subscription_error")
	if f.Channel != "private-secret" {
		t.Fatalf("error for %q", f.Channel)
	}
	if got := c.ping(); len(got) != 0 {
		t.Fatalf("frames after a refused subscribe: %v", got)
	}
}

func TestPresenceSubscriptionCarriesAPosition(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	seq := e.store("presence-room", "e", "1", "")
	c := connect(t, e.hs, "key-1")
	c.subscribeWith(app, "presence-room", map[string]any{"channel_data": `{"user_id":"7"}`, "rewind": 1})
	ok := c.expect("pusher_internal:subscription_succeeded")
	var d struct {
		Presence struct {
			IDs []string `json:"ids"`
		} `json:"presence"`
		Position string `json:"position"`
	}
	if err := json.Unmarshal([]byte(ok.str(t)), &d); err != nil || !slices.Equal(d.Presence.IDs, []string{"7"}) || seqOf(t, d.Position) != seq-1 {
		t.Fatalf("succeeded %s", ok.raw)
	}
	c.expectEvent("e", "presence-room", "1")
	c.expect("herald:resumed")
	// Member events carry no position.
	other := connect(t, e.hs, "key-1")
	other.subscribeWith(app, "presence-room", map[string]any{"channel_data": `{"user_id":"8"}`})
	other.expect("pusher_internal:subscription_succeeded")
	if f := c.expect("pusher_internal:member_added"); f.pos(t) != "" {
		t.Fatalf("member event with a position: %s", f.raw)
	}
}

// A resume of 1,000 events of 5 KB through a 64 KiB send queue: the replay
// waits for the writer instead of closing the client as slow.
func TestReplayIsPaced(t *testing.T) {
	e := newEnv(t, func(o *gateway.Options) { o.WriteQueueBytes = 64 << 10 })
	app := e.app("app-1")
	pad := strings.Repeat("x", 5000)
	e.storeMany("big", 1000, func(i int) string { return strconv.Itoa(i) + pad })
	from := position.Position{Epoch: e.epoch()}.String()
	c := connect(t, e.hs, "key-1")
	c.subscribeWith(app, "big", map[string]any{"resume": from})
	c.expect("pusher_internal:subscription_succeeded")
	for i := range 1000 {
		f := c.expect("e")
		if got := f.str(t); got != strconv.Itoa(i)+pad {
			t.Fatalf("event %d: %.20s…", i, got)
		}
	}
	if n, _ := resumedData(t, c.expect("herald:resumed")); n != 1000 {
		t.Fatalf("replayed %d", n)
	}
	c.ping()
	if n := metric(t, e.reg, "herald_gateway_slow_consumer_closes_total"); n != 0 {
		t.Fatalf("%v slow consumer closes", n)
	}
}

// Events stored while the gateway's NATS connection is down never arrive
// live: the gateway reads them from the stream once it is back.
func TestGapRepairAfterNATSReconnect(t *testing.T) {
	e := newEnv(t)
	var gwNC *nats.Conn
	_, hs, reg := e.startGateway(func(o *gateway.Options) {
		gwNC, _ = nats.Connect(e.srv.ClientURL(), nats.ReconnectWait(50*time.Millisecond))
		t.Cleanup(gwNC.Close)
		o.NC = gwNC
	})
	app := e.app("app-1")
	plain, opted := connect(t, hs, "key-1"), connect(t, hs, "key-1")
	plain.subscribeWith(app, "progress", nil)
	plain.expect("pusher_internal:subscription_succeeded")
	opted.subscribeWith(app, "progress", map[string]any{"positions": true})
	opted.expect("pusher_internal:subscription_succeeded")
	e.store("progress", "e", "1", "")
	plain.expectEvent("e", "progress", "1")
	opted.expectEvent("e", "progress", "1")

	id, err := gwNC.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gateway to notice", func() bool { return !gwNC.IsConnected() })
	for i := 2; i <= 4; i++ { // the last of a burst, with nothing after it
		e.store("progress", "e", strconv.Itoa(i), "")
	}
	eventually(t, "the gateway to reconnect", gwNC.IsConnected)
	for _, c := range []*client{plain, opted} {
		if got, _ := c.readEvents(3); !slices.Equal(got, numbers(2, 4)) {
			t.Fatalf("after the reconnect: %v", got)
		}
	}
	e.store("progress", "e", "5", "")
	plain.expectEvent("e", "progress", "5")
	opted.expectEvent("e", "progress", "5")
	if n := metric(t, reg, "herald_gateway_live_recovered_events_total"); n < 3 {
		t.Fatalf("recovered %v events", n)
	}
}

func TestCacheChannels(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	_, hs2, _ := e.startGateway()

	t.Run("miss", func(t *testing.T) {
		c := connect(t, e.hs, "key-1")
		c.subscribeWith(app, "cache-empty", nil)
		if f := c.expect("pusher_internal:subscription_succeeded"); f.str(t) != "{}" {
			t.Fatalf("succeeded %s", f.raw)
		}
		if f := c.read(); f.raw != `{"event":"pusher:cache_miss","channel":"cache-empty"}` {
			t.Fatalf("got %s, want cache_miss", f.raw)
		}
		e.store("cache-empty", "price", "1", "")
		if f := c.expectEvent("price", "cache-empty", "1"); f.pos(t) != "" {
			t.Fatalf("position without opting in: %s", f.raw)
		}
	})
	t.Run("last event, on any gateway", func(t *testing.T) {
		e.store("cache-price", "price", "1", "")
		e.store("cache-price", "price", "2", "")
		for i, srv := range []*httptest.Server{e.hs, hs2} {
			c := connect(t, srv, "key-1")
			c.subscribeWith(app, "cache-price", nil)
			c.expect("pusher_internal:subscription_succeeded")
			want := `{"event":"price","channel":"cache-price","data":"` + strconv.Itoa(2+i) + `"}`
			if f := c.read(); f.raw != want {
				t.Fatalf("got %s, want %s", f.raw, want)
			}
			e.store("cache-price", "price", strconv.Itoa(3+i), "")
			c.expectEvent("price", "cache-price", strconv.Itoa(3+i))
		}
	})
	t.Run("older than the window", func(t *testing.T) {
		// Only the cache stream holds it: no position, even when asked.
		e.cached("private-cache-rate", "rate", "1.1", 3)
		c := connect(t, e.hs, "key-1")
		c.subscribeWith(app, "private-cache-rate", map[string]any{"positions": true})
		c.expect("pusher_internal:subscription_succeeded")
		if f := c.read(); f.raw != `{"event":"rate","channel":"private-cache-rate","data":"1.1"}` {
			t.Fatalf("got %s, want the cached event", f.raw)
		}
	})
	t.Run("with positions", func(t *testing.T) {
		seq := e.store("cache-pos", "price", "9", "")
		c := connect(t, e.hs, "key-1")
		c.subscribeWith(app, "cache-pos", map[string]any{"positions": true})
		ok := c.expect("pusher_internal:subscription_succeeded")
		f := c.expectEvent("price", "cache-pos", "9")
		if seqOf(t, f.pos(t)) != seq || ok.dataPos(t) != f.pos(t) {
			t.Fatalf("succeeded at %s, cached event at %s, want %d", ok.dataPos(t), f.pos(t), seq)
		}
	})
	t.Run("a rewind replaces the cached event", func(t *testing.T) {
		e.store("cache-rw", "price", "1", "")
		e.store("cache-rw", "price", "2", "")
		c := connect(t, e.hs, "key-1")
		c.subscribeWith(app, "cache-rw", map[string]any{"rewind": 2})
		c.expect("pusher_internal:subscription_succeeded")
		if got, _ := c.readEventsNamed("price", 2); !slices.Equal(got, []string{"1", "2"}) {
			t.Fatalf("rewound %v", got)
		}
		c.expect("herald:resumed")
		if extra := c.ping(); len(extra) != 0 {
			t.Fatalf("more frames: %v", extra)
		}
	})
}

func (c *client) readEventsNamed(event string, n int) ([]string, []frame) {
	c.t.Helper()
	var data []string
	var fs []frame
	for range n {
		f := c.expect(event)
		data = append(data, f.str(c.t))
		fs = append(fs, f)
	}
	return data, fs
}

func TestReplayJSIsServed(t *testing.T) {
	for _, prefix := range []string{"", "/ws"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			e := newEnv(t, func(o *gateway.Options) { o.PathPrefix = prefix })
			resp, err := http.Get(e.hs.URL + prefix + "/app/_herald/replay.js")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != string(web.ReplayJS) {
				t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(body))
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
				t.Fatalf("Content-Type %q", ct)
			}
			if !strings.Contains(string(body), "HeraldReplay") || resp.Header.Get("Cache-Control") == "" {
				t.Fatalf("not the browser build, or no cache headers: %v", resp.Header)
			}
			req, _ := http.NewRequest(http.MethodGet, e.hs.URL+prefix+"/app/_herald/replay.js", nil)
			req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if again.StatusCode != http.StatusNotModified {
				t.Fatalf("conditional GET: %d", again.StatusCode)
			}
		})
	}
}

// A resume holds one page of history per connection at a time, whatever
// the history's size: a client that does not read stops the gateway from
// reading further (here 3.2 MB of history on two channels of one
// connection, a 64 KiB send queue). Once it reads, it gets everything.
func TestResumeMemoryIsBounded(t *testing.T) {
	var gwNC *nats.Conn
	e := newEnv(t, func(o *gateway.Options) {
		o.WriteQueueBytes = 64 << 10
		gwNC = o.NC
	})
	app := e.app("app-1")
	pad := strings.Repeat("x", 8000)
	const perChannel = 200
	channels := []string{"huge-1", "huge-2"}
	for _, ch := range channels {
		e.storeMany(ch, perChannel, func(i int) string { return strconv.Itoa(i) + pad })
	}
	history := float64(len(channels) * perChannel * len(pad))
	from := position.Position{Epoch: e.epoch()}.String()

	// Small socket buffers on both sides, so that what the gateway holds
	// is not hidden in the kernel's.
	hs := httptest.NewUnstartedServer(e.gw.Handler())
	hs.Listener = smallSendBuffer{hs.Listener}
	hs.Start()
	t.Cleanup(hs.Close)
	c := connectSmallBuffer(t, hs, "key-1")
	before := gwNC.Stats().InBytes
	for _, ch := range channels {
		c.subscribeWith(app, ch, map[string]any{"resume": from})
	}
	// The gateway reads until the client's socket and send queue are full,
	// then waits: its NATS input stops growing.
	var read uint64
	still := 0
	eventually(t, "the gateway to stop reading history", func() bool {
		n := gwNC.Stats().InBytes - before
		if n > 0 && n == read {
			still++
		} else {
			still = 0
		}
		read = n
		return still >= 40
	})
	t.Logf("read %d bytes of %.0f before the client read anything", read, history)
	if float64(read) > history/3 {
		t.Fatalf("the gateway read %d bytes of a %.0f-byte history for a client that reads nothing", read, history)
	}

	got := map[string]int{}
	for done := 0; done < len(channels); {
		f := c.read()
		switch f.Event {
		case "pusher_internal:subscription_succeeded":
		case "e":
			if want := strconv.Itoa(got[f.Channel]) + pad; f.str(t) != want {
				t.Fatalf("%s: event %d is %.10s…", f.Channel, got[f.Channel], f.str(t))
			}
			got[f.Channel]++
		case "herald:resumed":
			if n, _ := resumedData(t, f); n != perChannel || got[f.Channel] != perChannel {
				t.Fatalf("%s: resumed after %d events, replayed %d, want %d", f.Channel, got[f.Channel], n, perChannel)
			}
			done++
		default:
			t.Fatalf("unexpected %.200s", f.raw)
		}
	}
	c.ping()
}

// smallSendBuffer gives accepted connections a 64 KiB send buffer.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetWriteBuffer(64 << 10); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}
