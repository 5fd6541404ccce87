package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/events/eventstest"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/position"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// env is one embedded JetStream server with one app's events stream.
type env struct {
	t   testing.TB
	ctx context.Context
	nc  *nats.Conn
	js  jetstream.JetStream
	app *appconf.App
	eng *Engine
}

func newEnv(t testing.TB, app appconf.App) *env {
	t.Helper()
	if app.ID == "" {
		app.ID = "app.1"
	}
	a := eventstest.App(t, app)
	_, nc, js := eventstest.Start(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	eng, err := New(nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, nc: nc, js: js, app: a, eng: eng}
}

// publish stores one event and returns its sequence.
func (e *env) publish(channel, name, data, exclude string) uint64 {
	e.t.Helper()
	ev := events.Event{AppID: e.app.ID, Channel: channel, Name: name, Data: data, ExcludeSocketID: exclude}
	ack, err := e.js.PublishMsg(e.ctx, ev.Msg())
	if err != nil {
		e.t.Fatalf("publish on %s: %v", channel, err)
	}
	return ack.Sequence
}

func (e *env) streamInfo() *jetstream.StreamInfo {
	e.t.Helper()
	s, err := e.js.Stream(e.ctx, names.EventsStream(e.app.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	return s.CachedInfo()
}

func (e *env) epoch() position.Epoch { return position.EpochOf(e.streamInfo().Created) }

// at is the position after sequence seq of the current stream.
func (e *env) at(seq uint64) string {
	return position.Position{Epoch: e.epoch(), Seq: seq, Time: time.Now()}.String()
}

func seqs(evs []Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func wantReason(t *testing.T, err error, want Reason) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %s", err, want)
	}
	if r, ok := ReasonOf(err); !ok || r != want {
		t.Fatalf("ReasonOf(%v) = %s, %v", err, r, ok)
	}
}

func TestCurrentPosition(t *testing.T) {
	e := newEnv(t, appconf.App{})
	epoch := e.epoch()

	p, err := e.eng.CurrentPosition(e.ctx, e.app.ID, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if p.Epoch != epoch || p.Seq != 0 {
		t.Fatalf("empty stream: position %+v, want epoch %d seq 0", p, epoch)
	}

	a1 := e.publish("orders", "created", `{"id":1}`, "")
	e.publish("other", "x", `{}`, "")
	p, err = e.eng.CurrentPosition(e.ctx, e.app.ID, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if p.Epoch != epoch || p.Seq != a1 {
		t.Fatalf("channel with events: position %+v, want seq %d", p, a1)
	}

	// A channel without events stands at the stream's last sequence.
	p, err = e.eng.CurrentPosition(e.ctx, e.app.ID, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	if last := e.streamInfo().State.LastSeq; p.Seq != last {
		t.Fatalf("quiet channel: position %+v, want seq %d", p, last)
	}

	// Updating the stream's configuration, as every service does at start,
	// keeps the epoch.
	if _, err := events.EnsureStream(e.ctx, e.js, e.app, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := e.epoch(); got != epoch {
		t.Fatalf("epoch after update = %d, want %d", got, epoch)
	}
}

func TestResumeReturnsExactlyTheEventsAfterThePosition(t *testing.T) {
	e := newEnv(t, appconf.App{})
	var mine []uint64
	for i := range 20 {
		mine = append(mine, e.publish("private-orders.42", "progress", strconv.Itoa(i), ""))
		if i%3 == 0 {
			e.publish("private-orders.43", "progress", "other", "")
		}
	}
	for _, from := range []uint64{0, 1, mine[0], mine[5], mine[5] + 1, mine[18], mine[19]} {
		t.Run(strconv.FormatUint(from, 10), func(t *testing.T) {
			h, err := e.eng.Resume(e.ctx, e.app.ID, "private-orders.42", e.at(from))
			if err != nil {
				t.Fatal(err)
			}
			var want []uint64
			for _, s := range mine {
				if s > from {
					want = append(want, s)
				}
			}
			if got := seqs(h.Events); !slices.Equal(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			if h.Start.Seq != from {
				t.Fatalf("start %d, want %d", h.Start.Seq, from)
			}
			prev := from
			for _, ev := range h.Events {
				if ev.LastSeq != prev {
					t.Fatalf("event %d: LastSeq %d, want %d", ev.Seq, ev.LastSeq, prev)
				}
				prev = ev.Seq
				i := slices.Index(mine, ev.Seq)
				if ev.Name != "progress" || string(ev.Data) != strconv.Itoa(i) || ev.Time.IsZero() {
					t.Fatalf("event %d = %+v", ev.Seq, ev)
				}
			}
		})
	}
}

func TestResumeAgainstTheChannelCap(t *testing.T) {
	e := newEnv(t, appconf.App{ReplayMaxEvents: 5})
	b1 := e.publish("b", "x", "", "") // holds the stream's first sequence
	var a []uint64
	for i := range 7 {
		a = append(a, e.publish("a", "x", strconv.Itoa(i), ""))
	}
	// The cap kept a[2:]: a[1] was dropped.
	tests := []struct {
		name string
		from uint64
		want []uint64
		fail Reason
	}{
		{"dropped event follows", a[0], nil, WindowExceeded},
		{"before the channel began", b1 - 1, nil, WindowExceeded},
		{"at the dropped event", a[1], a[2:], ""},
		{"inside the tail", a[3], a[4:], ""},
		{"at the end", a[6], nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := e.eng.Resume(e.ctx, e.app.ID, "a", e.at(tt.from))
			if tt.fail != "" {
				wantReason(t, err, tt.fail)
				if h.Events != nil {
					t.Fatalf("failed resume returned events %v", seqs(h.Events))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(h.Events); !slices.Equal(got, tt.want) {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
		})
	}

	// Fewer events than the cap after the position: complete even though
	// the position's own event is not the channel's.
	c := []uint64{e.publish("c", "x", "", ""), e.publish("c", "x", "", "")}
	h, err := e.eng.Resume(e.ctx, e.app.ID, "c", e.at(b1))
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(h.Events); !slices.Equal(got, c) {
		t.Fatalf("events %v, want %v", got, c)
	}
}

func TestResumeAgainstTheWindow(t *testing.T) {
	e := newEnv(t, appconf.App{ReplayWindow: appconf.Duration(time.Second)})
	a1 := e.publish("a", "x", "1", "")
	e.publish("a", "x", "2", "")
	from := e.at(a1)
	poll.Until(t, poll.Patience, "events to age out", func() bool {
		return e.streamInfo().State.FirstSeq > a1+1
	})
	// Everything aged out: nothing left to prove with.
	_, err := e.eng.Resume(e.ctx, e.app.ID, "a", from)
	wantReason(t, err, WindowExceeded)

	// A newer event is stored, but the one between is gone: never a partial
	// replay.
	a3 := e.publish("a", "x", "3", "")
	h, err := e.eng.Resume(e.ctx, e.app.ID, "a", from)
	wantReason(t, err, WindowExceeded)
	if h.Events != nil {
		t.Fatalf("failed resume returned events %v", seqs(h.Events))
	}

	// From the last aged-out event, what follows is all there.
	h, err = e.eng.Resume(e.ctx, e.app.ID, "a", e.at(a3-1))
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(h.Events); !slices.Equal(got, []uint64{a3}) {
		t.Fatalf("events %v, want [%d]", got, a3)
	}
}

func TestResumeRefusesPositions(t *testing.T) {
	e := newEnv(t, appconf.App{})
	a1 := e.publish("a", "x", "", "")
	old := e.at(a1)
	other := position.Position{Epoch: e.epoch() + 1, Seq: a1}.String()
	tests := []struct {
		name, from string
		want       Reason
	}{
		{"garbage", "not-a-position", InvalidPosition},
		{"empty", "", InvalidPosition},
		{"future", e.at(a1 + 1), InvalidPosition},
		{"another installation", other, HistoryLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.eng.Resume(e.ctx, e.app.ID, "a", tt.from)
			wantReason(t, err, tt.want)
		})
	}

	t.Run("recreated stream", func(t *testing.T) {
		if err := e.js.DeleteStream(e.ctx, names.EventsStream(e.app.ID)); err != nil {
			t.Fatal(err)
		}
		_, err := e.eng.Resume(e.ctx, e.app.ID, "a", old)
		wantReason(t, err, HistoryLost)
		// The server may still be removing the deleted stream's store for a
		// moment ("error creating store for stream"): try again until it is gone.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := events.EnsureStream(e.ctx, e.js, e.app, events.StreamOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.publish("a", "x", "", "")
		e.publish("a", "x", "", "")
		_, err = e.eng.Resume(e.ctx, e.app.ID, "a", old)
		wantReason(t, err, HistoryLost)
	})
}

func TestRewind(t *testing.T) {
	e := newEnv(t, appconf.App{})
	rng := rand.New(rand.NewPCG(1, 2))
	var a []uint64
	for i := range 300 {
		a = append(a, e.publish("a", "x", strconv.Itoa(i), ""))
		for range rng.IntN(4) {
			e.publish("b", "x", "", "")
		}
	}
	for _, n := range []int{1, 2, 7, 50, 99, 100} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			h, err := e.eng.Rewind(e.ctx, e.app.ID, "a", n)
			if err != nil {
				t.Fatal(err)
			}
			want := a[len(a)-n:]
			if got := seqs(h.Events); !slices.Equal(got, want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			if h.Start.Seq != want[0]-1 || h.Start.Epoch != e.epoch() {
				t.Fatalf("start %+v, want seq %d", h.Start, want[0]-1)
			}
			if h.Events[0].LastSeq != h.Start.Seq {
				t.Fatalf("first LastSeq %d, want %d", h.Events[0].LastSeq, h.Start.Seq)
			}
		})
	}
	for _, n := range []int{0, -1, 101, 1000} {
		t.Run("out of range "+strconv.Itoa(n), func(t *testing.T) {
			_, err := e.eng.Rewind(e.ctx, e.app.ID, "a", n)
			wantReason(t, err, InvalidRewind)
		})
	}
	t.Run("fewer than asked", func(t *testing.T) {
		c := []uint64{e.publish("c", "x", "", ""), e.publish("c", "x", "", "")}
		h, err := e.eng.Rewind(e.ctx, e.app.ID, "c", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqs(h.Events); !slices.Equal(got, c) {
			t.Fatalf("events %v, want %v", got, c)
		}
	})
	t.Run("empty channel", func(t *testing.T) {
		h, err := e.eng.Rewind(e.ctx, e.app.ID, "nothing", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Events) != 0 || h.Start.Seq != e.streamInfo().State.LastSeq {
			t.Fatalf("history %+v, want none from the stream's last sequence", h)
		}
	})
}

func TestResumeLeavesOutExcludedSockets(t *testing.T) {
	e := newEnv(t, appconf.App{})
	from := e.at(0)
	e.publish("a", "x", "1", "")
	e.publish("a", "x", "2", "1.1") // this socket's own toOthers()
	e.publish("a", "x", "3", "2.2") // listed in socket_ids
	e.publish("a", "x", "4", "9.9") // someone else's
	last := e.publish("a", "x", "5", "2.2")
	h, err := e.eng.Resume(e.ctx, e.app.ID, "a", from)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := position.Parse(from)
	m := NewMerger(p, "1.1", "2.2", "3.3")
	out := m.Add(nil, h.Events...)
	var data []string
	for _, ev := range out {
		data = append(data, string(ev.Data))
	}
	if !slices.Equal(data, []string{"1", "4"}) {
		t.Fatalf("delivered %v, want [1 4]", data)
	}
	if m.Last().Seq != last {
		t.Fatalf("position %d, want %d: it moves past excluded events", m.Last().Seq, last)
	}
}

func TestChannelsWithSubjectCharactersAreIsolated(t *testing.T) {
	e := newEnv(t, appconf.App{})
	channels := []string{"a", "a.b", "a.b.c", "a*", "a>", ">", "*", "a.*", "a.>", "a=2Eb"}
	want := map[string][]uint64{}
	for round := range 3 {
		for _, ch := range channels {
			want[ch] = append(want[ch], e.publish(ch, "x", ch+strconv.Itoa(round), ""))
		}
	}
	for _, ch := range channels {
		t.Run(ch, func(t *testing.T) {
			h, err := e.eng.Resume(e.ctx, e.app.ID, ch, e.at(0))
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(h.Events); !slices.Equal(got, want[ch]) {
				t.Fatalf("resume: %v, want %v", got, want[ch])
			}
			r, err := e.eng.Rewind(e.ctx, e.app.ID, ch, 2)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(r.Events); !slices.Equal(got, want[ch][1:]) {
				t.Fatalf("rewind: %v, want %v", got, want[ch][1:])
			}
			p, err := e.eng.CurrentPosition(e.ctx, e.app.ID, ch)
			if err != nil {
				t.Fatal(err)
			}
			if p.Seq != want[ch][2] {
				t.Fatalf("position %d, want %d", p.Seq, want[ch][2])
			}
		})
	}
}

// TestResumeThenLive runs the whole sequence a gateway runs: live
// subscription first, history, merge, live, with a live message lost on the
// way and filled from the stream.
func TestResumeThenLive(t *testing.T) {
	e := newEnv(t, appconf.App{})
	const channel = "private-progress.7"
	var all []uint64
	for i := range 5 {
		all = append(all, e.publish(channel, "progress", strconv.Itoa(i), ""))
	}
	from := e.at(all[1])

	live, err := e.nc.SubscribeSync(names.LiveSubject(e.app.ID, channel))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Events stored while the history is read land in the buffer too.
	all = append(all, e.publish(channel, "progress", "5", ""))
	h, err := e.eng.Resume(e.ctx, e.app.ID, channel, from)
	if err != nil {
		t.Fatal(err)
	}
	for i := 6; i < 12; i++ {
		all = append(all, e.publish(channel, "progress", strconv.Itoa(i), ""))
	}

	m := NewMerger(h.Start)
	out := m.Add(nil, h.Events...)
	for range len(all) - 5 {
		msg, err := live.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := FromLive(msg)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq == all[8] {
			continue // lost on the way
		}
		out = m.Add(out, ev)
		if _, _, gap := m.Gap(); gap {
			if out, err = e.eng.Fill(e.ctx, e.app.ID, channel, m, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := seqs(out), all[2:]; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for _, ev := range out {
		if i := slices.Index(all, ev.Seq); string(ev.Data) != strconv.Itoa(i) {
			t.Fatalf("event %d has data %q, want %d", ev.Seq, ev.Data, i)
		}
	}

	// The last live message lost, with nothing after it to show the gap: a
	// tail check catches up.
	lost := e.publish(channel, "progress", "12", "")
	if out, err = e.eng.CatchUp(e.ctx, e.app.ID, channel, m, out[:0]); err != nil {
		t.Fatal(err)
	}
	if got := seqs(out); !slices.Equal(got, []uint64{lost}) {
		t.Fatalf("caught up %v, want [%d]", got, lost)
	}
}

// TestResumeWhilePublishing: events keep being stored while subscribers
// join with a resume; each one gets every event after its position once, in
// order.
func TestResumeWhilePublishing(t *testing.T) {
	e := newEnv(t, appconf.App{})
	const channel, total, joiners = "busy", 400, 4
	var (
		mu        sync.Mutex
		published []uint64
		done      = make(chan struct{})
	)
	snapshot := func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(published)
	}
	go func() {
		defer close(done)
		for i := range total {
			ev := events.Event{AppID: e.app.ID, Channel: channel, Name: "x", Data: strconv.Itoa(i)}
			ack, err := e.js.PublishMsg(e.ctx, ev.Msg())
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			mu.Lock()
			published = append(published, ack.Sequence)
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	for j := range joiners {
		wg.Go(func() {
			// Join once the publisher is part of the way through, from a
			// position somewhat behind.
			if !poll.Within(poll.Patience, func() bool { return len(snapshot()) >= j*total/joiners }) {
				t.Errorf("joiner %d: the publisher stalled", j)
				return
			}
			seen := snapshot()
			from := e.at(0)
			if len(seen) > 0 {
				from = e.at(seen[len(seen)/2])
			}
			live, err := e.nc.SubscribeSync(names.LiveSubject(e.app.ID, channel))
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = live.Unsubscribe() }()
			if err := e.nc.Flush(); err != nil {
				t.Error(err)
				return
			}
			h, err := e.eng.Resume(e.ctx, e.app.ID, channel, from)
			if err != nil {
				t.Errorf("joiner %d: %v", j, err)
				return
			}
			m := NewMerger(h.Start)
			out := m.Add(nil, h.Events...)
			<-done
			all := snapshot()
			for m.Last().Seq < all[len(all)-1] {
				msg, err := live.NextMsg(5 * time.Second)
				if err != nil {
					t.Errorf("joiner %d: live: %v", j, err)
					return
				}
				ev, err := FromLive(msg)
				if err != nil {
					t.Error(err)
					return
				}
				out = m.Add(out, ev)
				if out, err = e.eng.Fill(e.ctx, e.app.ID, channel, m, out); err != nil {
					t.Error(err)
					return
				}
			}
			var want []uint64
			for _, s := range all {
				if s > h.Start.Seq {
					want = append(want, s)
				}
			}
			if got := seqs(out); !slices.Equal(got, want) {
				t.Errorf("joiner %d from %d: delivered %v, want %v", j, h.Start.Seq, got, want)
			}
		})
	}
	wg.Wait()
}

func TestFillSkipsWhatTheStreamNoLongerHolds(t *testing.T) {
	e := newEnv(t, appconf.App{ReplayMaxEvents: 2})
	var a []uint64
	for i := range 5 {
		a = append(a, e.publish("a", "x", strconv.Itoa(i), ""))
	}
	// The merger stands at a[0]; a[4] arrives saying a[3] precedes it. The
	// cap dropped a[1] and a[2] (lost for good); a[3] is still stored.
	m := NewMerger(position.Position{Epoch: e.epoch(), Seq: a[0]})
	out := m.Add(nil, Event{Seq: a[4], LastSeq: a[3]})
	out, err := e.eng.Fill(e.ctx, e.app.ID, "a", m, out)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(out); !slices.Equal(got, a[3:]) {
		t.Fatalf("delivered %v, want %v", got, a[3:])
	}
	if m.Skipped() != 0 {
		t.Fatalf("skipped %d holes, want none: the read found what a[4] waited on", m.Skipped())
	}

	// Now a hole the stream cannot fill at all.
	m = NewMerger(position.Position{Epoch: e.epoch(), Seq: a[4]})
	out = m.Add(nil, Event{Seq: a[4] + 10, LastSeq: a[4] + 5})
	out, err = e.eng.Fill(e.ctx, e.app.ID, "a", m, out)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(out); !slices.Equal(got, []uint64{a[4] + 10}) || m.Skipped() != 1 {
		t.Fatalf("delivered %v, skipped %d", got, m.Skipped())
	}
}

func TestFromLive(t *testing.T) {
	msg := nats.NewMsg("herald.live.app.a")
	msg.Header.Set(names.HeaderNatsSequence, "12")
	msg.Header.Set(names.HeaderNatsLastSequence, "9")
	msg.Header.Set(headerTimeStamp, "2025-11-25T20:42:01.123456789Z")
	msg.Header.Set(names.HeaderEvent, "progress")
	msg.Header.Set(names.HeaderExclude, "1.2")
	msg.Data = []byte(`{"pct":50}`)
	ev, err := FromLive(msg)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 12 || ev.LastSeq != 9 || ev.Name != "progress" || ev.Exclude != "1.2" || string(ev.Data) != `{"pct":50}` ||
		ev.Time.Nanosecond() != 123456789 {
		t.Fatalf("event = %+v", ev)
	}
	for _, h := range []string{names.HeaderNatsSequence, names.HeaderNatsLastSequence, headerTimeStamp} {
		bad := nats.NewMsg(msg.Subject)
		for k, v := range msg.Header {
			bad.Header[k] = v
		}
		bad.Header.Del(h)
		if _, err := FromLive(bad); err == nil {
			t.Errorf("without %s: no error", h)
		}
	}
}

func TestResumeWaitsForASlot(t *testing.T) {
	e := newEnv(t, appconf.App{})
	eng, err := New(e.nc, Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	release, err := eng.acquire(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := eng.Resume(ctx, e.app.ID, "a", e.at(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("resume with every slot taken and a cancelled context: %v", err)
	}
	release()
	if _, err := eng.Resume(e.ctx, e.app.ID, "a", e.at(0)); err != nil {
		t.Fatal(err)
	}
}

func ExampleReasonOf() {
	err := fmt.Errorf("resume on orders: %w", WindowExceeded)
	r, _ := ReasonOf(err)
	fmt.Println(string(r))
	// Output: window_exceeded
}
