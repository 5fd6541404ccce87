package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/position"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Last is CurrentPosition that also returns the channel's last stored
// event, the one at the position, when the stream holds one (ok false when
// it holds none). Cache channels send it to a new subscriber.
func (e *Engine) Last(ctx context.Context, appID, channel string) (p position.Position, ev Event, ok bool, err error) {
	stream, subject := names.EventsStream(appID), names.EventSubject(appID, channel)
	if epoch, cached := e.cachedEpoch(stream); cached {
		ev, ok, err = e.last(ctx, stream, subject)
		if err != nil {
			return position.Position{}, Event{}, false, fmt.Errorf("last event of %s: %w", channel, err)
		}
		if ok {
			return ev.Position(epoch), ev, true, nil
		}
	}
	// As in CurrentPosition: the stream's state before the channel's last
	// event.
	info, err := e.info(ctx, stream)
	if err != nil {
		return position.Position{}, Event{}, false, fmt.Errorf("last event of %s: %w", channel, err)
	}
	epoch := position.EpochOf(info.Created)
	ev, ok, err = e.last(ctx, stream, subject)
	if err != nil {
		return position.Position{}, Event{}, false, fmt.Errorf("last event of %s: %w", channel, err)
	}
	if ok {
		return ev.Position(epoch), ev, true, nil
	}
	return position.Position{Epoch: epoch, Seq: info.State.LastSeq, Time: info.State.LastTime}, Event{}, false, nil
}

// Cached returns the event the app's cache stream keeps for a cache
// channel: its last event of the past 30 minutes, which outlives the events
// stream's window. Seq is the sequence the event had in the events stream.
// ok is false when there is none (or no cache stream at all).
func (e *Engine) Cached(ctx context.Context, appID, channel string) (ev Event, ok bool, err error) {
	ctx, cancel := e.withTimeout(ctx)
	defer cancel()
	subject := names.CacheSubject(appID, channel)
	m, err := e.nc.RequestWithContext(ctx, directGetPrefix+names.CacheStream(appID)+"."+subject, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return Event{}, false, fmt.Errorf("cached event of %s: %w", channel, jetstream.ErrStreamNotFound)
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("cached event of %s: %w", channel, err)
	}
	switch status := m.Header.Get(headerStatus); status {
	case "":
	case statusNotFound:
		return Event{}, false, nil
	default:
		return Event{}, false, fmt.Errorf("cached event of %s: status %s %s", channel, status, m.Header.Get(headerDescription))
	}
	seq, err := headerUint(m.Header, names.HeaderEventSequence)
	if err != nil {
		return Event{}, false, fmt.Errorf("cached event of %s: %w", channel, err)
	}
	ev, err = storedEvent(m)
	if err != nil {
		return Event{}, false, fmt.Errorf("cached event of %s: %w", channel, err)
	}
	ev.Seq = seq
	return ev, true, nil
}
