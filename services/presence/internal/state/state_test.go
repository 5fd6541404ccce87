package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
)

// Apply applies an operation stored alone at seq, as most tests store them.
func (s *State) Apply(seq uint64, op *presence.Op, now time.Time) Effects {
	return s.ApplyAt(seq, 0, op, now)
}

const (
	app  = "app1"
	room = "presence-room"
	news = "news"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// step is one operation (or, with expire set, a grace check) and what it
// must produce: events as "+user" / "-user", and the refusal if any.
type step struct {
	seq     uint64
	op      presence.Op
	at      time.Duration // after t0
	expire  bool
	events  []string
	refused string
}

func join(gw, sock, ch, user string) presence.Op {
	return presence.Op{Op: presence.Join, Gateway: gw, App: app, Channel: ch, SocketID: sock, UserID: user,
		UserInfo: json.RawMessage(`{"name":"` + user + `"}`)}
}

func leave(gw, sock, ch string) presence.Op {
	return presence.Op{Op: presence.Leave, Gateway: gw, App: app, Channel: ch, SocketID: sock}
}

func snapshot(gw string, reg uint64, subs ...presence.Sub) presence.Op {
	return presence.Op{Op: presence.Snapshot, Gateway: gw, Reg: reg, SnapshotID: "s", Last: true, Subs: subs}
}

func sub(sock, ch, user string) presence.Sub {
	return presence.Sub{App: app, Channel: ch, SocketID: sock, UserID: user}
}

func gone(gw string, reg uint64) presence.Op {
	return presence.Op{Op: presence.Gone, Gateway: gw, Reg: reg}
}

func drain(gw string) presence.Op { return presence.Op{Op: presence.Drain, Gateway: gw} }

func newState() *State {
	return New(Config{
		Grace:      10 * time.Second,
		MaxMembers: func(string) int { return 3 },
	})
}

// register makes gateways known as a fresh boot does: an empty snapshot.
func register(t *testing.T, s *State, gws ...string) {
	t.Helper()
	for i, gw := range gws {
		op := snapshot(gw, uint64(i+1))
		s.Apply(uint64(i+1), &op, t0)
	}
}

func describe(evs []presence.MemberEvent) []string {
	var out []string
	for _, e := range evs {
		sign := "+"
		if e.Event == protocol.EventMemberRemoved {
			sign = "-"
		}
		out = append(out, sign+e.UserID)
	}
	return out
}

func run(t *testing.T, s *State, steps []step) {
	t.Helper()
	for i, st := range steps {
		var fx Effects
		if st.expire {
			fx = s.Expire(t0.Add(st.at))
		} else {
			fx = s.Apply(st.seq, &st.op, t0.Add(st.at))
		}
		if got := describe(fx.Events); !slices.Equal(got, st.events) {
			t.Fatalf("step %d (%s seq %d): events %v, want %v", i, st.op.Op, st.seq, got, st.events)
		}
		if fx.Refused != st.refused {
			t.Fatalf("step %d (%s seq %d): refused %q, want %q", i, st.op.Op, st.seq, fx.Refused, st.refused)
		}
	}
}

func members(s *State, ch string) []string {
	return slices.Sorted(maps.Keys(s.Members(Key{app, ch})))
}

func TestMemberRules(t *testing.T) {
	tests := []struct {
		name        string
		steps       []step
		wantMembers []string
		wantCount   int
	}{
		{
			name: "first and last connection",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: join("A", "1.2", room, "u1")},
				{seq: 12, op: leave("A", "1.1", room)},
				{seq: 13, op: leave("A", "1.2", room), events: []string{"-u1"}},
			},
		},
		{
			name: "same user on two gateways counts once",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: join("B", "2.1", room, "u1")},
				{seq: 12, op: join("B", "2.2", room, "u2"), events: []string{"+u2"}},
				{seq: 13, op: leave("A", "1.1", room)},
			},
			wantMembers: []string{"u1", "u2"},
			wantCount:   2,
		},
		{
			name: "idempotent replays",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 10, op: join("A", "1.1", room, "u1")},
				{seq: 11, op: join("A", "1.1", room, "u1")},
				{seq: 12, op: leave("A", "9.9", room)},
				{seq: 13, op: leave("A", "1.1", room), events: []string{"-u1"}},
				{seq: 13, op: leave("A", "1.1", room)},
			},
		},
		{
			name: "leave of a channel never joined",
			steps: []step{
				{seq: 10, op: leave("A", "1.1", room)},
				{seq: 11, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
			},
			wantMembers: []string{"u1"},
			wantCount:   1,
		},
		{
			name: "member limit counts users not connections",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: join("A", "1.2", room, "u2"), events: []string{"+u2"}},
				{seq: 12, op: join("B", "2.1", room, "u3"), events: []string{"+u3"}},
				{seq: 13, op: join("B", "2.2", room, "u4"), refused: presence.StatusLimit},
				{seq: 14, op: join("B", "2.3", room, "u1")},
				{seq: 15, op: leave("B", "2.2", room)},
			},
			wantMembers: []string{"u1", "u2", "u3"},
			wantCount:   4,
		},
		{
			name: "gateway removal",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: join("A", "1.2", room, "u2"), events: []string{"+u2"}},
				{seq: 12, op: join("B", "2.1", room, "u2")},
				{seq: 13, op: gone("A", 50), events: []string{"-u1"}},
				{seq: 14, op: join("A", "1.3", room, "u3"), refused: presence.StatusRefused},
				{seq: 15, op: gone("A", 50)},
			},
			wantMembers: []string{"u2"},
			wantCount:   1,
		},
		{
			name: "stale gone after a new registration",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: snapshot("A", 60, sub("1.1", room, "u1"))},
				{seq: 12, op: gone("A", 55)},
			},
			wantMembers: []string{"u1"},
			wantCount:   1,
		},
		{
			name: "re-registration after removal",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: gone("A", 50), events: []string{"-u1"}},
				{seq: 12, op: join("A", "1.2", room, "u2"), refused: presence.StatusRefused},
				{seq: 13, op: snapshot("A", 40, sub("1.1", room, "u1")), refused: presence.StatusRefused},
				{seq: 14, op: snapshot("A", 70, sub("1.1", room, "u1"), sub("1.2", room, "u2")), events: []string{"+u1", "+u2"}},
				{seq: 15, op: leave("A", "1.1", room), events: []string{"-u1"}},
			},
			wantMembers: []string{"u2"},
			wantCount:   1,
		},
		{
			name: "snapshot diff",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: join("A", "1.2", room, "u2"), events: []string{"+u2"}},
				{seq: 12, op: join("B", "2.1", room, "u1")},
				{seq: 13, op: snapshot("A", 1, sub("1.2", room, "u2"), sub("1.3", room, "u3")), events: []string{"+u3"}},
				{seq: 14, op: snapshot("B", 2), events: []string{"-u1"}},
				{seq: 14, op: snapshot("B", 2)},
			},
			wantMembers: []string{"u2", "u3"},
			wantCount:   2,
		},
		{
			name: "drain grace: user back elsewhere in time",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: drain("A")},
				{seq: 12, op: leave("A", "1.1", room)},
				{expire: true, at: 5 * time.Second},
				{seq: 13, op: join("B", "2.1", room, "u1"), at: 6 * time.Second},
				{expire: true, at: 20 * time.Second},
			},
			wantMembers: []string{"u1"},
			wantCount:   1,
		},
		{
			name: "drain grace: user gone for good",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: join("A", "1.2", room, "u2"), events: []string{"+u2"}},
				{seq: 12, op: drain("A")},
				{seq: 13, op: leave("A", "1.1", room)},
				{seq: 14, op: gone("A", 50)},
				{expire: true, at: 9 * time.Second},
				{expire: true, at: 10 * time.Second, events: []string{"-u1", "-u2"}},
			},
		},
		{
			name: "no grace without drain",
			steps: []step{
				{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
				{seq: 11, op: gone("A", 50), events: []string{"-u1"}},
			},
		},
		{
			name: "unknown gateway without heartbeat",
			steps: []step{
				{seq: 10, op: join("Z", "9.1", room, "u1"), refused: presence.StatusRefused},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newState()
			s.cfg.Alive = func(gw string) bool { return gw != "Z" }
			register(t, s, "A", "B")
			run(t, s, tt.steps)
			if got := members(s, room); !slices.Equal(got, tt.wantMembers) && len(got)+len(tt.wantMembers) > 0 {
				t.Fatalf("members %v, want %v", got, tt.wantMembers)
			}
			if got := s.Count(Key{app, room}); got != tt.wantCount {
				t.Fatalf("subscription count %d, want %d", got, tt.wantCount)
			}
		})
	}
}

func TestPlainChannelCountsAndOccupancy(t *testing.T) {
	s := newState()
	register(t, s, "A", "B")
	k := Key{app, news}
	type want struct {
		count     int
		occupancy string // "", "occupied", "vacated"
		counted   bool
	}
	steps := []struct {
		name string
		seq  uint64
		op   presence.Op
		want want
	}{
		{"first subscriber", 10, join("A", "1.1", news, ""), want{1, "occupied", true}},
		{"second gateway", 11, join("B", "2.1", news, ""), want{2, "", true}},
		{"duplicate join", 12, join("B", "2.1", news, ""), want{2, "", false}},
		{"leave of an absent socket", 13, leave("B", "2.9", news), want{2, "", false}},
		{"gateway gone", 14, gone("B", 50), want{1, "", true}},
		{"last subscriber", 15, leave("A", "1.1", news), want{0, "vacated", true}},
	}
	for _, st := range steps {
		fx := s.Apply(st.seq, &st.op, t0)
		occ := ""
		if len(fx.Occupancy) == 1 {
			occ = map[bool]string{true: "occupied", false: "vacated"}[fx.Occupancy[0].Occupied]
		}
		got := want{s.Count(k), occ, slices.Contains(fx.Counts, k)}
		if got != st.want {
			t.Fatalf("%s: got %+v, want %+v", st.name, got, st.want)
		}
		if len(fx.Events) > 0 {
			t.Fatalf("%s: member events on a public channel: %v", st.name, describe(fx.Events))
		}
	}
}

func TestPersistRoundTrip(t *testing.T) {
	s := newState()
	register(t, s, "A", "B")
	run(t, s, []step{
		{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
		{seq: 11, op: join("B", "2.1", room, "u2"), events: []string{"+u2"}},
		{seq: 12, op: join("A", "1.2", news, "")},
		{seq: 13, op: join("B", "2.2", news, "")},
		{seq: 14, op: join("B", "2.3", news, "")},
		{seq: 15, op: drain("B")},
		{seq: 16, op: leave("B", "2.1", room)},
	})
	r := reload(t, s)

	if got := members(r, room); !slices.Equal(got, []string{"u1", "u2"}) {
		t.Fatalf("reloaded members %v", got)
	}
	if got := r.Count(Key{app, news}); got != 3 {
		t.Fatalf("reloaded count %d, want 3", got)
	}
	// Replays of what the bucket already holds change nothing.
	run(t, r, []step{
		{seq: 16, op: leave("B", "2.1", room)},
		{seq: 14, op: join("B", "2.3", news, "")},
	})
	// Sockets of plain channels come back as counts: a leave takes one.
	run(t, r, []step{
		{seq: 17, op: leave("B", "2.2", news)},
		// The held member expires with the deadline persisted before.
		{expire: true, at: 10 * time.Second, events: []string{"-u2"}},
	})
	if got := r.Count(Key{app, news}); got != 2 {
		t.Fatalf("count after leave %d, want 2", got)
	}
}

func TestReplayFinishesHalfPersistedGone(t *testing.T) {
	s := newState()
	register(t, s, "A", "B")
	run(t, s, []step{
		{seq: 10, op: join("A", "1.1", room, "u1"), events: []string{"+u1"}},
		{seq: 11, op: join("A", "1.2", "presence-other", "u1"), events: []string{"+u1"}},
	})
	before, _ := s.TakeDirty()
	run(t, s, []step{{seq: 12, op: gone("A", 50), events: []string{"-u1", "-u1"}}})
	after, _ := s.TakeDirty()

	// A crash persisted the gateway record and one channel, not the other.
	r := New(s.cfg)
	loadWrites(t, r, before)
	var partial []Write
	for _, w := range after {
		if !strings.Contains(w.Key, "other") {
			partial = append(partial, w)
		}
	}
	loadWrites(t, r, partial)
	fx := r.Apply(12, &presence.Op{Op: presence.Gone, Gateway: "A", Reg: 50}, t0)
	if got := describe(fx.Events); !slices.Equal(got, []string{"-u1"}) {
		t.Fatalf("replayed gone: events %v, want [-u1] for the channel not persisted", got)
	}
	if n, _, _ := r.Stats(); n != 0 {
		t.Fatalf("%d channels left after the replay", n)
	}
}

func TestEventIDsAreDeterministic(t *testing.T) {
	ops := []presence.Op{join("A", "1.1", room, "u1"), join("B", "2.1", room, "u2"), gone("A", 50), snapshot("B", 2)}
	ids := func() []string {
		s := newState()
		register(t, s, "A", "B")
		var out []string
		for i := range ops {
			for _, e := range s.Apply(uint64(10+i), &ops[i], t0).Events {
				out = append(out, e.MsgID)
			}
		}
		return out
	}
	a, b := ids(), ids()
	if len(a) != 4 || !slices.Equal(a, b) {
		t.Fatalf("ids differ between runs: %v vs %v", a, b)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(a)))) != len(a) {
		t.Fatalf("ids repeat: %v", a)
	}
}

// A channel that emptied is dropped with its sequence; replaying the
// operations that emptied it (a crash before their acks) emits the same
// events again, under the same ids, which the members stream stores once.
func TestReplayOfDroppedChannelReusesEventIDs(t *testing.T) {
	s := newState()
	register(t, s, "A")
	ops := []presence.Op{join("A", "1.1", room, "u1"), leave("A", "1.1", room)}
	var first, again []string
	for i := range ops {
		for _, e := range s.Apply(uint64(10+i), &ops[i], t0).Events {
			first = append(first, e.MsgID)
		}
	}
	for i := range ops {
		for _, e := range s.Apply(uint64(10+i), &ops[i], t0).Events {
			again = append(again, e.MsgID)
		}
	}
	if len(first) != 2 || !slices.Equal(first, again) {
		t.Fatalf("replay ids %v, first ids %v", again, first)
	}
	if n, _, _ := s.Stats(); n != 0 {
		t.Fatalf("%d channels after the replay", n)
	}
}

func TestUnknownLiveGatewayIsAskedForASnapshot(t *testing.T) {
	s := newState()
	op := join("N", "5.1", room, "u1")
	fx := s.Apply(10, &op, t0)
	if !slices.Equal(fx.Resync, []string{"N"}) || len(fx.Events) != 1 {
		t.Fatalf("effects %+v, want a resync of N and member_added", fx)
	}
}

func reload(t *testing.T, s *State) *State {
	t.Helper()
	ws, err := s.TakeDirty()
	if err != nil {
		t.Fatal(err)
	}
	r := New(s.cfg)
	loadWrites(t, r, ws)
	return r
}

func loadWrites(t *testing.T, r *State, ws []Write) {
	t.Helper()
	for _, w := range ws {
		if w.Value == nil {
			if parts := strings.Split(w.Key, "."); parts[0] == "ch" {
				a, _ := names.DecodeToken(parts[1])
				c, _ := names.DecodeToken(parts[2])
				delete(r.channels, Key{a, c})
			}
			continue
		}
		switch {
		case strings.HasPrefix(w.Key, names.ChannelStateKeyPrefix):
			var st presence.ChannelState
			if err := json.Unmarshal(w.Value, &st); err != nil {
				t.Fatal(err)
			}
			delete(r.channels, Key{st.App, st.Channel})
			r.Load(st)
		case strings.HasPrefix(w.Key, names.GatewayStateKeyPrefix):
			var g presence.GatewayState
			if err := json.Unmarshal(w.Value, &g); err != nil {
				t.Fatal(err)
			}
			r.LoadGateway(g)
		default:
			t.Fatalf("unexpected key %s", w.Key)
		}
	}
}

func ExampleState_Apply() {
	s := New(Config{})
	for i, op := range []presence.Op{join("A", "1.1", room, "u1"), join("B", "2.1", room, "u1"), leave("A", "1.1", room), leave("B", "2.1", room)} {
		fx := s.Apply(uint64(i+1), &op, t0)
		fmt.Println(op.Op, op.Gateway, describe(fx.Events))
	}
	// Output:
	// join A [+u1]
	// join B []
	// leave A []
	// leave B [-u1]
}

// applyBatch applies ops as the operations of one batch stored at seq.
func applyBatch(s *State, seq uint64, ops ...presence.Op) []Effects {
	var out []Effects
	for i := range ops {
		out = append(out, s.ApplyAt(seq, i, &ops[i], t0))
	}
	return out
}

func TestBatch(t *testing.T) {
	s := newState()
	register(t, s, "A", "B")
	// One batch joins, leaves and joins again the same channel: every
	// operation applies, each with its own events and occupancy change.
	fxs := applyBatch(s, 10,
		join("A", "1.1", room, "u1"), leave("A", "1.1", room), join("A", "1.2", room, "u1"),
		join("A", "1.3", news, ""), leave("A", "1.3", news))
	var got, ids []string
	for _, fx := range fxs {
		got = append(got, describe(fx.Events)...)
		for _, e := range fx.Events {
			ids = append(ids, e.MsgID)
		}
		for _, o := range fx.Occupancy {
			got = append(got, fmt.Sprintf("%s occupied=%v", o.Channel, o.Occupied))
		}
	}
	want := []string{"+u1", "presence-room occupied=true", "-u1", "presence-room occupied=false", "+u1",
		"presence-room occupied=true", "news occupied=true", "news occupied=false"}
	if !slices.Equal(got, want) {
		t.Fatalf("effects %v, want %v", got, want)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
		t.Fatalf("event ids %v: want three different ids", ids)
	}
	if m := members(s, room); !slices.Equal(m, []string{"u1"}) {
		t.Fatalf("members %v, want [u1]", m)
	}

	// Applied again (a redelivery after a crash that persisted it), the
	// batch changes nothing: its channels have seen all of it.
	r := reload(t, s)
	for i, fx := range applyBatch(r, 10,
		join("A", "1.1", room, "u1"), leave("A", "1.1", room), join("A", "1.2", room, "u1")) {
		if len(fx.Events)+len(fx.Occupancy)+len(fx.Counts) > 0 {
			t.Fatalf("replayed batch operation %d: %+v", i, fx)
		}
	}
	if m := members(r, room); !slices.Equal(m, []string{"u1"}) || r.Count(Key{app, room}) != 1 {
		t.Fatalf("after the replay: members %v, count %d", m, r.Count(Key{app, room}))
	}
	// The next batch applies.
	fxs = applyBatch(r, 11, join("B", "2.1", room, "u2"), leave("A", "1.2", room))
	if got := append(describe(fxs[0].Events), describe(fxs[1].Events)...); !slices.Equal(got, []string{"+u2", "-u1"}) {
		t.Fatalf("next batch: events %v", got)
	}
}
