package replay

import (
	"fmt"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/position"
	"github.com/nats-io/nats.go"
)

// Event is one stored channel event, read from the stream or received live.
type Event struct {
	// Seq is the event's stream sequence.
	Seq uint64
	// LastSeq is the sequence of the channel's previous stored event, 0 when
	// there was none. It is how a gap shows: an event whose predecessor was
	// never delivered.
	LastSeq uint64
	// Time is when the stream stored the event.
	Time time.Time
	// Name is the Pusher event name.
	Name string
	// Data is the event's data, as the trigger API received it.
	Data []byte
	// Exclude is the socket_id that must not receive the event.
	Exclude string

	// shared keeps the frame of an event that several resumes replay
	// (SharedFrame); nil for any other.
	shared *sharedFrame
}

// Position returns the event's position in the stream incarnation epoch.
func (e *Event) Position(epoch position.Epoch) position.Position {
	return position.Position{Epoch: epoch, Seq: e.Seq, Time: e.Time}
}

// FromLive reads a message that the events stream republished on a live
// subject (names.LiveSubject): its sequence and the channel's previous one
// come from the Nats-Sequence and Nats-Last-Sequence headers.
func FromLive(m *nats.Msg) (Event, error) {
	seq, err := headerUint(m.Header, names.HeaderNatsSequence)
	if err != nil {
		return Event{}, fmt.Errorf("live message on %s: %w", m.Subject, err)
	}
	last, err := headerUint(m.Header, names.HeaderNatsLastSequence)
	if err != nil {
		return Event{}, fmt.Errorf("live message on %s: %w", m.Subject, err)
	}
	ev, err := storedEvent(m)
	if err != nil {
		return Event{}, fmt.Errorf("live message on %s: %w", m.Subject, err)
	}
	ev.Seq, ev.LastSeq = seq, last
	return ev, nil
}

// headerTimeStamp is the header in which JetStream gives the time a message
// was stored, in republished messages and Direct Get answers alike.
const headerTimeStamp = "Nats-Time-Stamp"

// storedEvent reads what every stored message carries: the event name, the
// excluded socket, the data and the storage time.
func storedEvent(m *nats.Msg) (Event, error) {
	ts := m.Header.Get(headerTimeStamp)
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Event{}, fmt.Errorf("header %s %q: %w", headerTimeStamp, ts, err)
	}
	return Event{
		Time:    t,
		Name:    m.Header.Get(names.HeaderEvent),
		Data:    m.Data,
		Exclude: m.Header.Get(names.HeaderExclude),
	}, nil
}

func headerUint(h nats.Header, key string) (uint64, error) {
	s := h.Get(key)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("header %s %q: %w", key, s, err)
	}
	return v, nil
}
