package globalstate

import (
	"context"
	"fmt"

	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

// Operations go out one publish at a time: those that arrive while a
// publish is in flight wait, and go together in one batch when it is
// acknowledged. A wave of subscribes (a deploy's reconnects) then costs the
// operations stream, and the presence service, a publish per round trip
// instead of one per subscription; a lone operation goes at once, on its own.

// batchBytes bounds the operations of one message, like a snapshot part.
const batchBytes = snapshotPartBytes

// opAck is the acknowledgement of the message that carries an operation.
type opAck struct {
	done chan struct{}
	seq  uint64 // the message's stream sequence
	err  error
}

// wait returns the stream sequence of the operation's message.
func (a *opAck) wait(ctx context.Context) (uint64, error) {
	select {
	case <-a.done:
		return a.seq, a.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// publish queues op after check passes, both under pubMu, so that the
// operations are stored in the order the local set changed. The operation
// goes out at once when no publish is in flight.
func (c *Client) publish(op *presence.Op, check func() error) (*opAck, error) {
	n := opBytes(op)
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	if err := check(); err != nil {
		return nil, err
	}
	if len(c.queued) > 0 && (len(c.queued) >= presence.MaxBatchOps || c.queuedBytes+n > batchBytes) {
		// Full: it goes now, behind the one in flight.
		_ = c.sendQueuedLocked()
	}
	if c.queuedAck == nil {
		c.queuedAck = &opAck{done: make(chan struct{})}
	}
	c.queued = append(c.queued, *op)
	c.queuedBytes += n
	a := c.queuedAck
	if c.inflight == 0 || c.oneByOne {
		if err := c.sendQueuedLocked(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// sendQueuedLocked publishes the queued operations as one message; pubMu
// is held. A failed publish asks for a snapshot: the presence service may
// lack the operations.
func (c *Client) sendQueuedLocked() error {
	ops, a := c.queued, c.queuedAck
	c.queued, c.queuedAck, c.queuedBytes = nil, nil, 0
	if len(ops) == 0 {
		return nil
	}
	batch := presence.BatchOf(ops)
	m, err := batch.Msg("")
	var f jetstream.PubAckFuture
	if err == nil {
		f, err = c.js.PublishMsgAsync(m)
	}
	if err != nil {
		c.needSnapshot.Store(true)
		c.nudge()
		a.err = fmt.Errorf("%w: %v", ErrUnavailable, err)
		close(a.done)
		return a.err
	}
	c.inflight++
	c.batches.Add(1)
	go c.awaitAck(f, a)
	return nil
}

// awaitAck resolves a message's operations once it is stored (or failed:
// the publish error handler then asks for a snapshot), and sends what was
// queued meanwhile.
func (c *Client) awaitAck(f jetstream.PubAckFuture, a *opAck) {
	select {
	case ack := <-f.Ok():
		a.seq = ack.Sequence
	case err := <-f.Err():
		a.err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	close(a.done)
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.inflight--
	_ = c.sendQueuedLocked()
}

// opBytes estimates an operation's share of a message.
func opBytes(op *presence.Op) int {
	return len(op.App) + len(op.Channel) + len(op.SocketID) + len(op.UserID) + len(op.UserInfo) + 64
}
