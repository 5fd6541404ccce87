package replay

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/position"
)

func ev(seq, last uint64) Event { return Event{Seq: seq, LastSeq: last} }

func TestMerger(t *testing.T) {
	type step struct {
		add     []Event
		skip    bool
		deliver []uint64
		gap     [2]uint64 // {after, before}; zero when none
	}
	tests := []struct {
		name    string
		from    uint64
		exclude []string
		steps   []step
		last    uint64
	}{
		{
			name: "history then live in order",
			from: 10,
			steps: []step{
				{add: []Event{ev(12, 10), ev(15, 12)}, deliver: []uint64{12, 15}},
				{add: []Event{ev(16, 15)}, deliver: []uint64{16}},
			},
			last: 16,
		},
		{
			name: "live overlapping history is dropped",
			from: 10,
			steps: []step{
				{add: []Event{ev(12, 10), ev(15, 12)}, deliver: []uint64{12, 15}},
				{add: []Event{ev(12, 10), ev(15, 12), ev(16, 15), ev(16, 15)}, deliver: []uint64{16}},
			},
			last: 16,
		},
		{
			name: "events at or before the start are dropped",
			from: 10,
			steps: []step{
				{add: []Event{ev(9, 3), ev(10, 9), ev(11, 10)}, deliver: []uint64{11}},
			},
			last: 11,
		},
		{
			name: "a channel that had nothing at the start",
			from: 10,
			steps: []step{
				{add: []Event{ev(14, 0)}, deliver: []uint64{14}},
				{add: []Event{ev(20, 14)}, deliver: []uint64{20}},
			},
			last: 20,
		},
		{
			name: "a gap waits, then the fill completes it",
			from: 10,
			steps: []step{
				{add: []Event{ev(12, 10)}, deliver: []uint64{12}},
				{add: []Event{ev(17, 15)}, gap: [2]uint64{12, 17}},
				{add: []Event{ev(18, 17)}, gap: [2]uint64{12, 17}},
				{add: []Event{ev(15, 12)}, deliver: []uint64{15, 17, 18}},
			},
			last: 18,
		},
		{
			name: "live arriving out of order",
			from: 0,
			steps: []step{
				{add: []Event{ev(3, 2), ev(2, 1)}, gap: [2]uint64{0, 2}},
				{add: []Event{ev(1, 0)}, deliver: []uint64{1, 2, 3}},
			},
			last: 3,
		},
		{
			name: "a hole the stream no longer holds is skipped",
			from: 10,
			steps: []step{
				{add: []Event{ev(17, 15), ev(18, 17)}, gap: [2]uint64{10, 17}},
				{skip: true, deliver: []uint64{17, 18}},
				{skip: true},
			},
			last: 18,
		},
		{
			name:    "excluded events are not delivered but passed",
			from:    0,
			exclude: []string{"1.1", "", "2.2"},
			steps: []step{
				{add: []Event{
					{Seq: 1, Exclude: "1.1"}, {Seq: 2, LastSeq: 1}, {Seq: 3, LastSeq: 2, Exclude: "2.2"},
					{Seq: 4, LastSeq: 3, Exclude: "3.3"}, {Seq: 5, LastSeq: 4, Exclude: "2.2"},
				}, deliver: []uint64{2, 4}},
			},
			last: 5,
		},
		{
			name: "a predecessor after its event is ignored",
			from: 0,
			steps: []step{
				{add: []Event{ev(4, 9)}, deliver: []uint64{4}},
			},
			last: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMerger(position.Position{Epoch: 7, Seq: tt.from}, tt.exclude...)
			for i, st := range tt.steps {
				var out []Event
				if st.skip {
					out = m.Skip(nil)
				} else {
					out = m.Add(nil, st.add...)
				}
				if got := seqs(out); !slices.Equal(got, st.deliver) && len(got)+len(st.deliver) > 0 {
					t.Fatalf("step %d: delivered %v, want %v", i, got, st.deliver)
				}
				after, before, ok := m.Gap()
				if got := [2]uint64{after, before}; got != st.gap || ok != (st.gap != [2]uint64{}) {
					t.Fatalf("step %d: gap %v %v, want %v", i, got, ok, st.gap)
				}
			}
			if p := m.Last(); p.Seq != tt.last || p.Epoch != 7 {
				t.Fatalf("last %+v, want seq %d", p, tt.last)
			}
		})
	}
}

// sim plays one channel's life against a Merger: events published with
// gaps in the stream's sequence (other channels), a stored tail that limits
// cut from the front, a live path that loses and repeats messages, a
// history read at some point while events keep coming, and fills of the
// holes the merger reports. It checks the Merger's promises.
type sim struct {
	t   *testing.T
	rng *rand.Rand

	seq       uint64  // the stream's last sequence
	published []Event // every event of the channel
	stored    []Event // what the stream holds: an unbroken tail
	live      []Event // delivered on the live subject, not yet handed over
	evicted   bool    // some event after the start left the stream

	m         *Merger
	start     uint64
	out       []Event
	owed      map[uint64]bool // handed over while newer than the position
	excluded  map[string]bool
	skipped   int
	lostLive  bool
	subscribe bool
}

func (s *sim) publish() {
	s.seq += 1 + uint64(s.rng.IntN(3)) // other channels in between
	var last uint64
	if n := len(s.stored); n > 0 {
		last = s.stored[n-1].Seq
	}
	e := Event{Seq: s.seq, LastSeq: last, Time: time.Unix(int64(s.seq), 0)}
	switch s.rng.IntN(6) {
	case 0:
		e.Exclude = "me"
	case 1:
		e.Exclude = "old-tab"
	case 2:
		e.Exclude = "someone-else"
	}
	s.published = append(s.published, e)
	s.stored = append(s.stored, e)
	if !s.subscribe {
		return
	}
	switch r := s.rng.IntN(20); {
	case r == 0:
		s.lostLive = true // lost on the way
	case r == 1:
		s.live = append(s.live, e, e)
	default:
		s.live = append(s.live, e)
	}
}

func (s *sim) evict() {
	if len(s.stored) == 0 {
		return
	}
	n := 1 + s.rng.IntN(len(s.stored))
	for _, e := range s.stored[:n] {
		if e.Seq > s.start {
			s.evicted = true
		}
	}
	s.stored = slices.Clone(s.stored[n:])
}

// read is a history read from the stream: what it holds after `after`,
// chained from there, as the engine reads it.
func (s *sim) read(after uint64) []Event {
	var evs []Event
	prev := after
	for _, e := range s.stored {
		if e.Seq > after {
			e.LastSeq = prev
			prev = e.Seq
			evs = append(evs, e)
		}
	}
	return evs
}

func (s *sim) add(evs ...Event) {
	last := s.m.Last().Seq
	for _, e := range evs {
		if e.Seq > last && !s.excluded[e.Exclude] {
			s.owed[e.Seq] = true
		}
	}
	s.out = s.m.Add(s.out, evs...)
	s.checkGap()
}

func (s *sim) checkGap() {
	after, before, ok := s.m.Gap()
	if ok != (s.m.Pending() > 0) {
		s.t.Fatalf("gap reported %v with %d events waiting", ok, s.m.Pending())
	}
	if ok && (after != s.m.Last().Seq || before <= after) {
		s.t.Fatalf("gap (%d, %d) with the merger at %d", after, before, s.m.Last().Seq)
	}
}

// catchUp is what Engine.CatchUp does (a gateway's tail check): a live
// message lost with nothing after it shows no gap.
func (s *sim) catchUp() {
	s.add(s.read(s.m.Last().Seq)...)
	s.fill()
}

// fill is what Engine.Fill does, against the simulated stream.
func (s *sim) fill() {
	for tries := 0; ; tries++ {
		after, before, ok := s.m.Gap()
		if !ok {
			return
		}
		var evs []Event
		for _, e := range s.read(after) {
			if e.Seq < before {
				evs = append(evs, e)
			}
		}
		s.add(evs...)
		if a, b, ok := s.m.Gap(); ok && a == after && b == before {
			s.out = s.m.Skip(s.out)
			s.skipped++
			s.checkGap()
		}
		if tries > 10_000 {
			s.t.Fatal("fill does not end")
		}
	}
}

func runSim(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &sim{t: t, rng: rng, owed: map[uint64]bool{}, excluded: map[string]bool{"me": true, "old-tab": true}}
	evictions := rng.IntN(3) == 0

	for range rng.IntN(15) {
		s.publish()
		if evictions && rng.IntN(8) == 0 {
			s.evict()
		}
	}
	// The client's position: the start of the stream, one of the channel's
	// events, or any point of the stream.
	switch rng.IntN(3) {
	case 0:
	case 1:
		if len(s.published) > 0 {
			s.start = s.published[rng.IntN(len(s.published))].Seq
		}
	default:
		s.start = rng.Uint64N(s.seq + 1)
	}
	s.m = NewMerger(position.Position{Seq: s.start}, "me", "old-tab")
	s.subscribe = true

	// Events keep coming while the history is read.
	for range rng.IntN(6) {
		s.publish()
	}
	history := s.read(s.start)
	for range rng.IntN(6) {
		s.publish()
		if evictions && rng.IntN(6) == 0 {
			s.evict()
		}
	}
	// The history, in pieces that may come in any order.
	cut := 0
	if len(history) > 0 {
		cut = rng.IntN(len(history) + 1)
	}
	pieces := [][]Event{history[:cut], history[cut:]}
	if rng.IntN(2) == 0 {
		pieces[0], pieces[1] = pieces[1], pieces[0]
	}
	for _, p := range pieces {
		s.add(p...)
	}

	// Live, with the stream moving on, repeats of old events, and fills.
	for range 20 + rng.IntN(60) {
		switch r := rng.IntN(10); {
		case r < 3:
			s.publish()
		case r < 7 && len(s.live) > 0:
			n := 1 + rng.IntN(len(s.live))
			s.add(s.live[:n]...)
			s.live = s.live[n:]
		case r == 7 && len(s.published) > 0:
			s.add(s.published[rng.IntN(len(s.published))])
		case r == 8:
			if rng.IntN(2) == 0 {
				s.fill()
			} else {
				s.catchUp()
			}
		case evictions:
			s.evict()
		}
	}
	s.add(s.live...)
	s.fill()
	s.catchUp()

	// Strictly increasing, after the start, nothing excluded.
	prev := s.start
	for _, e := range s.out {
		if e.Seq <= prev {
			t.Fatalf("seed %d: delivered %d after %d", seed, e.Seq, prev)
		}
		if s.excluded[e.Exclude] {
			t.Fatalf("seed %d: delivered %d excluded for %q", seed, e.Seq, e.Exclude)
		}
		prev = e.Seq
	}
	// Nothing lost that was handed over while newer than the position.
	delivered := map[uint64]bool{}
	for _, e := range s.out {
		delivered[e.Seq] = true
	}
	for seq := range s.owed {
		if !delivered[seq] {
			t.Fatalf("seed %d: %d was handed over and never delivered (delivered %v)", seed, seq, seqs(s.out))
		}
	}
	if s.m.Pending() != 0 {
		t.Fatalf("seed %d: %d events still waiting", seed, s.m.Pending())
	}
	// Without evictions every event after the start arrives, whatever the
	// live path lost, and the position ends at the last one.
	if !s.evicted {
		var want []uint64
		for _, e := range s.published {
			if e.Seq > s.start && !s.excluded[e.Exclude] {
				want = append(want, e.Seq)
			}
		}
		if got := seqs(s.out); !slices.Equal(got, want) {
			t.Fatalf("seed %d: delivered %v, want %v", seed, got, want)
		}
		if s.skipped != 0 {
			t.Fatalf("seed %d: %d holes skipped with every event still stored", seed, s.skipped)
		}
		if n := len(s.published); n > 0 && s.published[n-1].Seq > s.start && s.m.Last().Seq != s.published[n-1].Seq {
			t.Fatalf("seed %d: position %d, want %d", seed, s.m.Last().Seq, s.published[n-1].Seq)
		}
	}
}

func TestMergerProperties(t *testing.T) {
	n := uint64(5000)
	if testing.Short() {
		n = 500
	}
	for seed := range n {
		runSim(t, seed)
	}
}

func FuzzMerger(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { runSim(t, seed) })
}

func BenchmarkMergerLive(b *testing.B) {
	m := NewMerger(position.Position{}, "1.1")
	var out []Event
	b.ReportAllocs()
	for i := range b.N {
		seq := uint64(i) + 1
		out = m.Add(out[:0], Event{Seq: seq, LastSeq: seq - 1})
	}
}
