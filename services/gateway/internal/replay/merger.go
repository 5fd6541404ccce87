package replay

import (
	"cmp"
	"slices"

	"github.com/herald-ws/herald/shared/position"
)

// Merger delivers the events of one channel exactly once and in sequence
// order, from pieces that overlap and arrive in any order: a history batch,
// the live messages buffered while it was read, later live messages, and the
// ranges read from the stream to fill gaps. It does no I/O and is not safe
// for concurrent use: one goroutine feeds it (per subscription during a
// resume, per channel on the live path).
//
// An event is delivered once its predecessor on the channel (LastSeq) has
// been delivered or lies at or before the point the merger started from.
// Until then it waits, and Gap reports the hole so that the caller can read
// it from the stream (Engine.Fill). Events not newer than the last delivered
// one are dropped. Excluded events are not delivered, but the merger's
// position still moves past them.
type Merger struct {
	last    position.Position
	exclude map[string]struct{}
	// pending holds events newer than last that wait for a predecessor,
	// sorted by Seq, without duplicates.
	pending []Event
	skipped int
}

// NewMerger starts after from: events at or before from.Seq are dropped.
// Events whose Exclude is one of exclude (the subscribing socket, and the
// socket_ids the client listed) are not delivered.
func NewMerger(from position.Position, exclude ...string) *Merger {
	m := &Merger{last: from}
	for _, s := range exclude {
		if s == "" {
			continue
		}
		if m.exclude == nil {
			m.exclude = make(map[string]struct{}, len(exclude))
		}
		m.exclude[s] = struct{}{}
	}
	return m
}

// Last is the position the merger has reached: the last event delivered or
// excluded, or the starting point. It is the position of herald:resumed.
func (m *Merger) Last() position.Position { return m.last }

// Add takes events and appends to out, in sequence order, those that can now
// be delivered (including waiting ones that they complete). It returns out.
func (m *Merger) Add(out []Event, evs ...Event) []Event {
	for i := range evs {
		ev := evs[i]
		if ev.Seq <= m.last.Seq {
			continue
		}
		if ev.LastSeq >= ev.Seq {
			// A predecessor cannot follow its event; treat it as unknown
			// rather than wait for ever.
			ev.LastSeq = 0
		}
		if len(m.pending) == 0 && ev.LastSeq <= m.last.Seq {
			out = m.deliver(out, &ev)
			continue
		}
		m.insert(ev)
	}
	return m.drain(out)
}

// Gap reports the hole the merger waits on: an event after `after` and
// before `before` (both exclusive) was not seen, and the event at before
// cannot be delivered until it is, or until Skip.
func (m *Merger) Gap() (after, before uint64, ok bool) {
	if len(m.pending) == 0 {
		return 0, 0, false
	}
	return m.last.Seq, m.pending[0].Seq, true
}

// Skip gives up on the current hole, when the stream no longer holds what
// is missing: the first waiting event is delivered, and what it completes.
func (m *Merger) Skip(out []Event) []Event {
	if len(m.pending) == 0 {
		return out
	}
	m.skipped++
	ev := m.pending[0]
	m.pending[0] = Event{}
	m.pending = m.pending[1:]
	out = m.deliver(out, &ev)
	return m.drain(out)
}

// SkipAll gives up every hole, when the stream cannot supply what is
// missing: what waits is delivered in order, so that delivery goes on.
func (m *Merger) SkipAll(out []Event) []Event {
	for len(m.pending) > 0 {
		out = m.Skip(out)
	}
	return out
}

// Restart follows ev into a recreated stream. When ev is not after the last
// event delivered by sequence but was stored after it (Restarted), the
// events stream was deleted and made again and counts from 1: the merger
// starts over just before ev, dropping what waited on the old stream, rather
// than drop the new stream's events as already delivered. It reports
// whether it did.
func (m *Merger) Restart(ev *Event) bool {
	if !Restarted(m.last, ev) {
		return false
	}
	clear(m.pending)
	m.pending = m.pending[:0]
	m.last = position.Position{Epoch: m.last.Epoch, Seq: ev.LastSeq}
	return true
}

// Restarted reports whether ev, whose sequence is not after last's, was
// nevertheless stored after it: the events stream was deleted and made
// again, and counts from 1. Times are compared to the millisecond, the
// precision of positions.
func Restarted(last position.Position, ev *Event) bool {
	return ev.Seq <= last.Seq && !last.Time.IsZero() && ev.Time.UnixMilli() > last.Time.UnixMilli()
}

// Pending is the number of events waiting on a hole.
func (m *Merger) Pending() int { return len(m.pending) }

// Skipped counts the holes given up with Skip: events that were lost.
func (m *Merger) Skipped() int { return m.skipped }

func (m *Merger) insert(ev Event) {
	n := len(m.pending)
	if n == 0 || m.pending[n-1].Seq < ev.Seq {
		m.pending = append(m.pending, ev)
		return
	}
	i, found := slices.BinarySearchFunc(m.pending, ev.Seq, func(e Event, seq uint64) int {
		return cmp.Compare(e.Seq, seq)
	})
	if found {
		return
	}
	m.pending = slices.Insert(m.pending, i, ev)
}

func (m *Merger) drain(out []Event) []Event {
	i := 0
	for i < len(m.pending) && m.pending[i].LastSeq <= m.last.Seq {
		out = m.deliver(out, &m.pending[i])
		m.pending[i] = Event{}
		i++
	}
	if i == len(m.pending) {
		m.pending = m.pending[:0]
	} else if i > 0 {
		m.pending = m.pending[i:]
	}
	return out
}

func (m *Merger) deliver(out []Event, ev *Event) []Event {
	m.last.Seq, m.last.Time = ev.Seq, ev.Time
	if _, no := m.exclude[ev.Exclude]; no {
		return out
	}
	return append(out, *ev)
}
