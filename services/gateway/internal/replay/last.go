package replay

import (
	"context"
	"fmt"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/position"
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
	return e.lastOf(ctx, names.CacheStream(appID), names.CacheSubject(appID, channel), names.HeaderEventSequence, "cached event", channel)
}
