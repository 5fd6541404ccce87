package hub

import (
	"sync/atomic"

	"github.com/herald-ws/herald/services/gateway/internal/replay"
	"github.com/herald-ws/herald/shared/position"
	"github.com/herald-ws/herald/shared/protocol"
)

// EventSubscriber is a subscription that opted in to positions (or needs
// the events' sequences, as a cache channel's first delivery does). It gets
// the channel's stored events through Deliver, in order and each once,
// rather than their plain frames through Send; other frames of the channel
// (client events, member events) still come through Send.
type EventSubscriber interface {
	Subscriber
	// Deliver hands over one event. It must not block; ev is shared with
	// the channel's other subscribers and must not be changed.
	Deliver(ev *Event)
}

// Event is one stored channel event as the hub delivers it: the event, its
// plain frame (byte for byte what subscribers without positions get), and
// the frame with its position, encoded at most once per stream epoch for
// every subscriber that asks.
type Event struct {
	replay.Event
	channel string
	frame   []byte
	pos     atomic.Pointer[positioned]
}

type positioned struct {
	epoch position.Epoch
	frame []byte
}

// Frame is the event's plain Pusher frame.
func (e *Event) Frame() []byte { return e.frame }

// PositionFrame is the frame with the top-level "position" member, in the
// stream incarnation epoch. Safe for concurrent use.
func (e *Event) PositionFrame(epoch position.Epoch) []byte {
	if p := e.pos.Load(); p != nil && p.epoch == epoch {
		return p.frame
	}
	f := EventFrame(e.channel, &e.Event, epoch, true)
	e.pos.Store(&positioned{epoch, f})
	return f
}

// EventFrame encodes a stored event of channel, with its position in epoch
// when positioned is set.
func EventFrame(channel string, ev *replay.Event, epoch position.Epoch, positioned bool) []byte {
	var extra []byte
	if positioned {
		extra = PositionMember(ev.Position(epoch))
	}
	return protocol.EventFrame(ev.Name, channel, string(ev.Data), extra)
}

// PositionMember is the top-level `"position":"…"` member of a frame. A
// position's text needs no JSON escaping.
func PositionMember(p position.Position) []byte {
	s := p.String()
	b := make([]byte, 0, len(s)+13)
	b = append(b, `"position":"`...)
	b = append(b, s...)
	return append(b, '"')
}
