package publish

import (
	"context"
	"errors"
	"fmt"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// Cache channels (cache-, private-cache-, private-encrypted-cache-,
// presence-cache-) keep their last event for 30 minutes, whatever the
// app's replay window: a new subscriber gets it at once. The events stream
// holds it for the window; a copy goes to the app's cache stream
// (events.CacheStreamConfig), written once the events stream acknowledged
// the event, with the event's sequence there, and before the request is
// answered.

// storeCache stores the cache stream copy of every cache channel's event in
// evs, acks[i] being the events stream's acknowledgement of evs[i]. An ack
// marked duplicate (a retried request with an idempotency key) is skipped:
// its copy is stored already, and writing it again could put an older
// event back over a newer one. A cache stream that is gone is ensured again
// once.
func (p *Publisher) storeCache(ctx context.Context, app *appconf.App, evs []events.Event, acks []*jetstream.PubAck) error {
	var idx []int
	for i, ev := range evs {
		if protocol.IsCache(ev.Channel) && acks[i] != nil && !acks[i].Duplicate {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	err := p.cacheCopies(ctx, evs, acks, idx)
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		return err
	}
	p.log.Warn("cache stream missing, ensuring it again", "app_id", app.ID, "err", err)
	if _, eerr := events.EnsureCacheStream(ctx, p.js, app, p.opt); eerr != nil {
		return fmt.Errorf("%w (ensuring the cache stream again: %v)", err, eerr)
	}
	return p.cacheCopies(ctx, evs, acks, idx)
}

// cacheCopies publishes the copies of evs[idx] and waits for their acks.
func (p *Publisher) cacheCopies(ctx context.Context, evs []events.Event, acks []*jetstream.PubAck, idx []int) error {
	futures := make([]jetstream.PubAckFuture, 0, len(idx))
	for _, i := range idx {
		f, err := p.js.PublishMsgAsync(evs[i].CacheMsg(acks[i].Sequence))
		if err != nil {
			return fmt.Errorf("caching the event of %s: %w", evs[i].Channel, err)
		}
		futures = append(futures, f)
	}
	var firstErr error
	for n, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = fmt.Errorf("caching the event of %s: %w", evs[idx[n]].Channel, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for cache acknowledgements: %w", ctx.Err())
		}
	}
	return firstErr
}
