package service

// Operations: applying them, publishing their effects, and the flush that
// persists the state before acknowledging them.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

// ackable is an operation to acknowledge at the next flush.
type ackable struct {
	seq uint64
	msg jetstream.Msg
}

// handleQueued handles up to n operations already delivered.
func (t *term) handleQueued(n int) error {
	for ; n > 0; n-- {
		select {
		case m := <-t.ops:
			if err := t.handle(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// handle applies one delivered operation.
func (t *term) handle(m jetstream.Msg) error {
	md, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return nil
	}
	seq := md.Sequence.Stream
	if seq <= t.applied {
		// Already applied: redelivered after the ack wait, or applied and
		// persisted by an earlier term that did not get to ack it. Held
		// snapshot parts are acknowledged with their snapshot.
		if !t.isHeld(seq) {
			t.acks = append(t.acks, ackable{seq, m})
		}
		t.svc.metrics.ops.WithLabelValues("replayed").Inc()
		return nil
	}
	t.applied = seq
	op, err := presence.DecodeOp(m.Data())
	if err != nil {
		t.svc.log.Warn("dropping a malformed presence operation", "subject", m.Subject(), "err", err)
		t.svc.metrics.ops.WithLabelValues("malformed").Inc()
		t.acks = append(t.acks, ackable{seq, m})
		return nil
	}
	if op.Op == presence.Snapshot {
		return t.snapshotPart(seq, m, &op)
	}
	if op.Op == presence.Gone {
		t.discardHeld(op.Gateway)
		t.svc.metrics.gatewaysGone.Inc()
	}
	t.acks = append(t.acks, ackable{seq, m})
	if op.Op == presence.Batch {
		// Each operation with its own effects, as if stored on its own:
		// a channel occupied and vacated within a batch gets both webhooks,
		// in order.
		for i := range op.Ops {
			if err := t.applyAt(seq, i, &op.Ops[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return t.apply(seq, &op)
}

// apply applies one operation to the state and publishes what it produced.
func (t *term) apply(seq uint64, op *presence.Op) error { return t.applyAt(seq, 0, op) }

// applyAt applies operation idx of the batch at seq.
func (t *term) applyAt(seq uint64, idx int, op *presence.Op) error {
	fx := t.st.ApplyAt(seq, idx, op, time.Now())
	result := "applied"
	if fx.Refused != "" {
		result = "ignored"
		if op.Op == presence.Join {
			t.refusedJoins[refusalKey{seq, op.Gateway, op.App, op.Channel, op.SocketID}] = refusal{fx.Refused, time.Now()}
		}
	}
	t.svc.metrics.ops.WithLabelValues(result).Inc()
	return t.effects(fx, t.opsEpoch+"-"+state.OpID(seq, idx))
}

// effects publishes what a step produced. Member events and webhooks go
// out at once (before the state that contains them is written: a crash in
// between re-emits them under the same id, which the stream drops). id names
// the step: the operation applied, or empty for grace expiries.
func (t *term) effects(fx state.Effects, id string) error {
	if err := t.queueWebhooks(&fx, id); err != nil {
		return err
	}
	for i := range fx.Events {
		f, err := t.svc.js.PublishMsgAsync(fx.Events[i].Msg())
		if err != nil {
			return fmt.Errorf("publishing a member event: %w", err)
		}
		t.memberAcks = append(t.memberAcks, f)
		t.svc.metrics.memberEvents.Inc()
		if len(t.memberAcks) >= maxUnsettled {
			// A gateway's removal can emit thousands: stay under the
			// client's limit on pending publishes.
			if err := t.settle(t.ctx); err != nil {
				return err
			}
		}
	}
	now := time.Now()
	for _, k := range fx.Counts {
		t.countChanged(k, now)
	}
	t.occupancy = append(t.occupancy, fx.Occupancy...)
	for _, gw := range fx.Resync {
		t.publishResync(names.GatewayResyncSubject(gw), "state unknown")
	}
	t.publishUsers(fx.Users)
	return nil
}

// settle waits until every member event published is stored, and moves
// membersSeq past them.
func (t *term) settle(ctx context.Context) error {
	for _, f := range t.memberAcks {
		select {
		case ack := <-f.Ok():
			t.membersSeq = max(t.membersSeq, ack.Sequence)
		case err := <-f.Err():
			return fmt.Errorf("storing a member event: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.memberAcks = t.memberAcks[:0]
	for _, f := range t.webhookAcks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("queueing a webhook: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.webhookAcks = t.webhookAcks[:0]
	return nil
}

// flush persists the state, then acknowledges the operations that produced
// it, then tells the occupancy hook.
func (t *term) flush(ctx context.Context) error {
	if len(t.acks) == 0 && !t.st.Dirty() && len(t.occupancy) == 0 {
		return nil
	}
	start := time.Now()
	if err := t.settle(ctx); err != nil {
		return err
	}
	ws, err := t.st.TakeDirty()
	if err != nil {
		return err
	}
	t.meta.Applied = t.persistedUpTo()
	b, err := json.Marshal(t.meta)
	if err != nil {
		return fmt.Errorf("encoding meta: %w", err)
	}
	ws = append(ws, state.Write{Key: names.PresenceMetaKey, Value: b})
	if err := t.store.write(ctx, ws); err != nil {
		return fmt.Errorf("persisting channel state: %w", err)
	}
	// In stream order: were the acks cut short, what stays unacknowledged
	// is a suffix, which the next term replays.
	slices.SortFunc(t.acks, func(a, b ackable) int { return cmp.Compare(a.seq, b.seq) })
	for _, a := range t.acks {
		_ = a.msg.Ack()
	}
	t.acks = t.acks[:0]
	t.svc.metrics.flushSeconds.Observe(time.Since(start).Seconds())
	if hook := t.svc.opt.OnOccupancy; hook != nil {
		for _, o := range t.occupancy {
			hook(Occupancy{AppID: o.App, Channel: o.Channel, Occupied: o.Occupied, At: start})
		}
	}
	t.occupancy = t.occupancy[:0]
	return nil
}

// persistedUpTo is the highest sequence such that every operation up to it
// is applied: unfinished snapshots hold it back.
func (t *term) persistedUpTo() uint64 {
	up := t.applied
	for _, h := range t.snapshots {
		if len(h.parts) > 0 {
			up = min(up, h.parts[0].seq-1)
		}
	}
	return max(up, t.meta.Applied)
}
