package globalstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// snapshotPartBytes bounds one snapshot part, well under the stream's
// message limit.
const snapshotPartBytes = 256 << 10

// register creates the heartbeat key (again, when it was lost) and sends a
// full snapshot tied to the new registration.
func (c *Client) register(ctx context.Context) error {
	if err := c.createKey(ctx, time.Now()); err != nil {
		return fmt.Errorf("globalstate: registering gateway %s: %w", c.id, err)
	}
	c.needSnapshot.Store(true)
	return c.sendSnapshot(ctx)
}

// createKey creates the heartbeat key of a registration that started then.
// A key that exists was written by an earlier try whose answer was lost
// (the id is this boot's own): it is taken as is.
func (c *Client) createKey(ctx context.Context, started time.Time) error {
	c.pubMu.Lock()
	draining := c.draining
	c.pubMu.Unlock()
	key := names.GatewayKey(c.id)
	rev, err := c.kv.Create(ctx, key, c.heartbeatValue(started, draining), jetstream.KeyTTL(c.opt.TTL))
	if errors.Is(err, jetstream.ErrKeyExists) {
		var e jetstream.KeyValueEntry
		if e, err = c.kv.Get(ctx, key); err == nil {
			rev = e.Revision()
		}
	}
	if err != nil {
		return err
	}
	c.pubMu.Lock()
	c.reg = rev
	c.pubMu.Unlock()
	c.lastRev.Store(rev)
	c.started = started
	return nil
}

func (c *Client) heartbeatValue(started time.Time, draining bool) []byte {
	b, _ := json.Marshal(presence.Heartbeat{ID: c.id, Started: started, Draining: draining, TTLMillis: c.opt.TTL.Milliseconds()})
	return b
}

// heartbeat renews the key every TTL/3, registers again when the key was
// lost (the presence service has then removed this gateway), and sends a
// snapshot whenever one is due.
func (c *Client) heartbeat() {
	defer close(c.done)
	t := time.NewTicker(c.opt.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		case <-c.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opt.TTL/3)
		c.pubMu.Lock()
		draining := c.draining
		c.pubMu.Unlock()
		err := c.renew(ctx, draining)
		if errors.Is(err, errKeyLost) {
			err = c.recoverKey(ctx)
		}
		if err == nil && c.needSnapshot.Load() {
			err = c.sendSnapshot(ctx)
		}
		cancel()
		if err != nil {
			c.log.Warn("gateway heartbeat", "gateway", c.id, "err", err)
		}
	}
}

// recoverKey handles a renewal that found another revision: either the
// previous renewal was stored but its ack was lost (the key is still ours),
// or the key expired or was deleted, and the gateway registers again.
func (c *Client) recoverKey(ctx context.Context) error {
	e, err := c.kv.Get(ctx, names.GatewayKey(c.id))
	if err == nil && e.Operation() == jetstream.KeyValuePut {
		c.lastRev.Store(e.Revision())
		return nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		return fmt.Errorf("reading the heartbeat: %w", err)
	}
	c.log.Warn("gateway heartbeat lost; registering again", "gateway", c.id)
	return c.register(ctx)
}

var errKeyLost = errors.New("heartbeat key lost")

// renew writes the heartbeat with its TTL, expecting the revision written
// last: any other (an expiry marker, another write) means the key was lost.
func (c *Client) renew(ctx context.Context, draining bool) error {
	m := nats.NewMsg("$KV." + names.GatewaysBucket + "." + names.GatewayKey(c.id))
	m.Data = c.heartbeatValue(c.started, draining)
	ack, err := c.js.PublishMsg(ctx, m, jetstream.WithMsgTTL(c.opt.TTL), jetstream.WithExpectLastSequencePerSubject(c.lastRev.Load()))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return errKeyLost
		}
		return fmt.Errorf("renewing the heartbeat: %w", err)
	}
	c.lastRev.Store(ack.Sequence)
	return nil
}

// sendSnapshot publishes the whole local set, in parts, under pubMu so that
// no operation comes between them.
func (c *Client) sendSnapshot(ctx context.Context) error {
	c.needSnapshot.Store(false)
	var futures []jetstream.PubAckFuture
	err := func() error {
		c.pubMu.Lock()
		defer c.pubMu.Unlock()
		if c.closed {
			return nil
		}
		// Queued operations are in the local set: they go first, so that
		// the snapshot follows every operation stored before it.
		if err := c.sendQueuedLocked(); err != nil {
			return err
		}
		id := appconf.RandomHex(8)
		part := presence.Op{Op: presence.Snapshot, Gateway: c.id, Reg: c.reg, SnapshotID: id}
		size := 0
		flush := func(last bool) error {
			part.Last = last
			m, err := part.Msg("")
			if err != nil {
				return err
			}
			f, err := c.js.PublishMsgAsync(m)
			if err != nil {
				return err
			}
			futures = append(futures, f)
			part.Part++
			part.Subs, part.Users, size = nil, nil, 0
			return nil
		}
		for _, ls := range c.subs {
			s := presence.Sub{App: ls.key.app, Channel: ls.key.channel, SocketID: ls.key.socket, UserID: ls.userID, UserInfo: ls.info}
			n := len(s.App) + len(s.Channel) + len(s.SocketID) + len(s.UserID) + len(s.UserInfo) + 64
			if size+n > snapshotPartBytes && len(part.Subs)+len(part.Users) > 0 {
				if err := flush(false); err != nil {
					return err
				}
			}
			part.Subs = append(part.Subs, s)
			size += n
		}
		for _, u := range c.signedInLocked() {
			n := len(u.App) + len(u.SocketID) + len(u.UserID) + 48
			if size+n > snapshotPartBytes && len(part.Subs)+len(part.Users) > 0 {
				if err := flush(false); err != nil {
					return err
				}
			}
			part.Users = append(part.Users, u)
			size += n
		}
		return flush(true)
	}()
	for _, f := range futures {
		if _, werr := waitAck(ctx, f); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		c.needSnapshot.Store(true)
		return fmt.Errorf("sending a snapshot: %w", err)
	}
	return nil
}
