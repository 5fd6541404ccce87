package publish

import (
	"context"
	"fmt"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
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
// marked duplicate on the first try (a retried request with an idempotency
// key) is skipped: its copy is stored already, and writing it again could
// put an older event back over a newer one. A duplicate on a later try of
// this call (retriedAck) is this call's own event, stored by a try whose
// ack was lost: its copy is written. Copies carry the event's message id
// with a suffix, so a copy sent twice is stored once; they are retried as
// the events are (untilStored).
func (p *Publisher) storeCache(ctx context.Context, deadline time.Time, app *appconf.App, evs []events.Event, acks []*jetstream.PubAck, retriedAck []bool) error {
	var idx []int
	for i, ev := range evs {
		if protocol.IsCache(ev.Channel) && acks[i] != nil && (!acks[i].Duplicate || (retriedAck != nil && retriedAck[i])) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	msg := func(n int) *nats.Msg {
		ev := evs[idx[n]]
		m := ev.CacheMsg(acks[idx[n]].Sequence)
		m.Header.Set(names.HeaderNatsMsgID, ev.MsgID+":cache")
		return m
	}
	cacheAcks := make([]*jetstream.PubAck, len(idx))
	if err := p.untilStored(ctx, deadline, app, len(idx), msg, cacheAcks, func(int) {}, names.CacheStream(app.ID)); err != nil {
		return fmt.Errorf("caching events: %w", err)
	}
	return nil
}
