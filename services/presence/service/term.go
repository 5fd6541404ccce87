package service

// The term: taking over the state, feeding operations and requests to one
// goroutine, and its loop.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/lease"
	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// term is one period of this instance being active. Everything in it runs
// on one goroutine except the feeders (operations, requests, heartbeats),
// which hand over through channels.
type term struct {
	svc   *Service        // the service this term runs for
	in    *infra          // the streams and buckets it reads and writes
	ctx   context.Context // ends with the term: lease lost or service stopped
	st    *state.State    // channels, users and gateways as applied so far
	store *store          // writes st to the state bucket, fenced by meta
	meta  presence.Meta   // this term's record, persisted with the state
	hb    *heartbeats     // which gateways are alive

	ops      chan jetstream.Msg // operations from the consumer
	requests chan *nats.Msg     // member and online requests
	fail     chan error         // a feeder's error, which ends the term

	// applied is the highest operation sequence seen in this term; target
	// the last one stored when it began. Member lists are answered only once
	// applied reaches target, when the state again reflects every member
	// event stored.
	applied, target uint64
	// opsEpoch tells the operations stream apart from an earlier one of
	// the same name (sequences restart when it is recreated); member event
	// ids start with it.
	opsEpoch string
	// acks wait for the flush that persists what their operations did.
	acks []ackable
	// snapshots are the parts of unfinished gateway snapshots, by gateway.
	snapshots map[string]*heldSnapshot

	// memberAcks are member events published and not yet stored.
	memberAcks []jetstream.PubAckFuture
	// webhookAcks are webhook batches queued and not yet stored.
	webhookAcks []jetstream.PubAckFuture
	// membersSeq is the members stream's sequence once every member event
	// published is stored: member lists are answered as of it.
	membersSeq uint64

	// refusedJoins are the joins the state refused, so that the member
	// request waiting on one gets the refusal.
	refusedJoins map[refusalKey]refusal
	// waiting are member requests whose operation is not yet applied.
	waiting []*memberRequest

	// occupancy are occupancy changes told to OnOccupancy after the next
	// flush.
	occupancy []state.Occupancy
	// counts throttle each channel's subscription count.
	counts map[state.Key]*countState
	// flushArmed: the flush timer runs.
	flushArmed bool
}

// Bounds of one term.
const (
	// ackWait is how long the consumer waits for an ack before redelivering;
	// a redelivered operation already applied is acknowledged again only.
	ackWait = 30 * time.Second
	// maxAckPending bounds operations delivered and not yet acknowledged.
	maxAckPending = 50_000
	// flushAt forces a flush when this many operations wait for their ack.
	flushAt = 10_000
	// requestTTL drops a member request that waits longer; the gateway has
	// given up by then.
	requestTTL = 10 * time.Second
	// tombstoneAge is how long removed gateways are remembered.
	tombstoneAge = time.Hour
	// tick paces grace expiries, throttled counts and housekeeping.
	tick = 100 * time.Millisecond
	// maxUnsettled bounds member events published and not yet stored.
	maxUnsettled = 1000
)

func (s *Service) runTerm(parent context.Context, l *lease.Lease, in *infra) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	go func() {
		if err := l.Keep(ctx); err != nil {
			cancel(err)
		}
	}()

	t := &term{svc: s, in: in, ctx: ctx, ops: make(chan jetstream.Msg, 1024), requests: make(chan *nats.Msg, 1024),
		fail: make(chan error, 4), snapshots: map[string]*heldSnapshot{}, refusedJoins: map[refusalKey]refusal{},
		counts: map[state.Key]*countState{}}
	stop, err := t.start()
	// Cancel first: the feeders may be blocked handing over to the loop.
	defer func() { cancel(nil); stop() }()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}
	err = t.loop()
	if cause := context.Cause(ctx); errors.Is(cause, lease.ErrLost) {
		return cause
	}
	return err
}

// start fences the state bucket, loads it, and starts the feeders. The
// returned function stops them.
func (t *term) start() (func(), error) {
	s := t.svc
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	var err error
	if t.store, err = newStore(t.ctx, s.js, t.in.state); err != nil {
		return stop, err
	}
	if e, err := t.in.state.Get(t.ctx, names.PresenceMetaKey); err == nil {
		if err := json.Unmarshal(e.Value(), &t.meta); err != nil {
			return stop, fmt.Errorf("reading meta: %w", err)
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return stop, fmt.Errorf("reading meta: %w", err)
	}
	t.meta.Instance, t.meta.Term, t.meta.Since = s.opt.Instance, t.meta.Term+1, time.Now()
	if err := t.store.fence(t.ctx, t.meta); err != nil {
		return stop, err
	}

	// Heartbeats first: loading may already need to know who is alive.
	t.hb = newHeartbeats(t)
	if err := t.hb.start(); err != nil {
		return stop, err
	}
	stops = append(stops, t.hb.stop)

	opsInfo, err := t.in.ops.Info(t.ctx)
	if err != nil {
		return stop, fmt.Errorf("reading the operations stream: %w", err)
	}
	// Sequences restart when the stream is recreated: its creation time
	// tells the streams apart.
	epoch := strconv.FormatInt(opsInfo.Created.UnixNano(), 36)
	t.opsEpoch = epoch
	t.st = state.New(state.Config{
		Grace:         s.opt.DrainGrace,
		MaxMembers:    s.maxMembers,
		Alive:         t.hb.alive,
		EventIDPrefix: epoch,
	})
	if err := t.load(); err != nil {
		return stop, err
	}
	recreated := t.meta.OpsEpoch != "" && t.meta.OpsEpoch != epoch
	if recreated {
		// The sequences in the state belong to the old stream.
		t.st.ResetSequences()
		t.meta.Applied = 0
	}
	t.meta.OpsEpoch = epoch
	membersInfo, err := t.in.members.Info(t.ctx)
	if err != nil {
		return stop, fmt.Errorf("reading the members stream: %w", err)
	}
	t.membersSeq = membersInfo.State.LastSeq

	first, last := opsInfo.State.FirstSeq, opsInfo.State.LastSeq
	lost := recreated || last < t.meta.Applied || first > t.meta.Applied+1
	t.applied, t.target = max(t.meta.Applied, first-min(first, 1)), last
	if lost {
		// Operations were dropped unapplied (the stream hit its limit while
		// no instance ran) or the stream was recreated: only the gateways
		// know the truth now.
		s.log.Warn("operations lost; asking every gateway for a snapshot",
			"applied", t.meta.Applied, "first", first, "last", last)
		t.publishResync(names.PresenceResyncSubject, "operations lost")
	}

	if err := t.consume(&stops); err != nil {
		return stop, err
	}
	sub, err := s.nc.ChanQueueSubscribe(names.PresenceMembersSubject, names.PresenceQueueGroup, t.requests)
	if err != nil {
		return stop, fmt.Errorf("subscribing to member requests: %w", err)
	}
	stops = append(stops, func() { _ = sub.Unsubscribe() })
	osub, err := s.nc.ChanQueueSubscribe(names.PresenceOnlineSubject, names.PresenceQueueGroup, t.requests)
	if err != nil {
		return stop, fmt.Errorf("subscribing to online requests: %w", err)
	}
	stops = append(stops, func() { _ = osub.Unsubscribe() })
	stops = append(stops, t.deliverWebhooks())

	// Drain graces that ended while no instance was active.
	if err := t.effects(t.st.Expire(time.Now()), ""); err != nil {
		return stop, err
	}
	t.hb.reconcile()
	return stop, nil
}

// load reads every key of the state bucket.
func (t *term) load() error {
	w, err := t.in.state.WatchAll(t.ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("loading state: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return fmt.Errorf("loading state: %w", t.ctx.Err())
		case e := <-w.Updates():
			if e == nil {
				return nil
			}
			switch {
			case strings.HasPrefix(e.Key(), names.ChannelStateKeyPrefix):
				var cs presence.ChannelState
				if err := json.Unmarshal(e.Value(), &cs); err != nil {
					return fmt.Errorf("loading %s: %w", e.Key(), err)
				}
				t.st.Load(cs)
			case strings.HasPrefix(e.Key(), names.UserStateKeyPrefix):
				var u presence.UserState
				if err := json.Unmarshal(e.Value(), &u); err != nil {
					return fmt.Errorf("loading %s: %w", e.Key(), err)
				}
				t.st.LoadUser(u)
			case strings.HasPrefix(e.Key(), names.GatewayStateKeyPrefix):
				var g presence.GatewayState
				if err := json.Unmarshal(e.Value(), &g); err != nil {
					return fmt.Errorf("loading %s: %w", e.Key(), err)
				}
				t.st.LoadGateway(g)
			}
		}
	}
}

// consume recreates the durable consumer, so that it delivers, in order,
// exactly the operations not yet acknowledged (the work queue removed the
// others), and feeds them to the loop.
func (t *term) consume(stops *[]func()) error {
	err := t.in.ops.DeleteConsumer(t.ctx, names.PresenceOpsConsumer)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("resetting the operations consumer: %w", err)
	}
	cons, err := t.in.ops.CreateConsumer(t.ctx, jetstream.ConsumerConfig{
		Durable:       names.PresenceOpsConsumer,
		Description:   "Herald presence service",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxAckPending,
	})
	if err != nil {
		return fmt.Errorf("creating the operations consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		return fmt.Errorf("consuming operations: %w", err)
	}
	done := make(chan struct{})
	*stops = append(*stops, func() { it.Stop(); <-done })
	go func() {
		defer close(done)
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				// Missed heartbeats and the like: the iterator recovers.
				continue
			}
			select {
			case t.ops <- m:
			case <-t.ctx.Done():
				return
			}
		}
	}()
	return nil
}

// loop runs the term: operations, requests, flushes and the ticks of
// graces, counts and housekeeping, one at a time.
func (t *term) loop() error {
	// The tick runs every tick only while something waits on it (graces,
	// throttled counts, member requests); an idle term wakes for its
	// housekeeping only.
	ticker := time.NewTimer(tick)
	defer ticker.Stop()
	due := time.Now().Add(tick)
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	lastReconcile, lastPrune := time.Now(), time.Now()
	for {
		select {
		case <-t.ctx.Done():
			// Persist what was applied, so that the next term starts there;
			// without it the operations are replayed, which is also safe.
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = t.flush(fctx)
			cancel()
			return nil
		case err := <-t.fail:
			return err
		case m := <-t.ops:
			if err := t.handle(m); err != nil {
				return err
			}
			// Take what else is queued before answering, so that one
			// round trip settles the events of many operations.
			if err := t.handleQueued(512); err != nil {
				return err
			}
			if err := t.answerWaiting(); err != nil {
				return err
			}
		case m := <-t.requests:
			if err := t.request(m); err != nil {
				return err
			}
		case <-flush.C:
			t.flushArmed = false
			if err := t.flush(t.ctx); err != nil {
				return err
			}
		case now := <-ticker.C:
			due = time.Now().Add(t.tickEvery())
			ticker.Reset(time.Until(due))
			if err := t.effects(t.st.Expire(now), ""); err != nil {
				return err
			}
			t.publishCounts(now)
			t.expireRequests(now)
			if now.Sub(lastReconcile) >= t.svc.opt.ReconcileInterval {
				lastReconcile = now
				t.hb.reconcile()
				ch, subs, members := t.st.Stats()
				t.svc.metrics.channels.Set(float64(ch))
				t.svc.metrics.subscriptions.Set(float64(subs))
				t.svc.metrics.members.Set(float64(members))
			}
			if now.Sub(lastPrune) >= time.Minute {
				lastPrune = now
				t.st.PruneGateways(now.Add(-tombstoneAge))
				for k, r := range t.refusedJoins {
					if now.Sub(r.at) > requestTTL {
						delete(t.refusedJoins, k)
					}
				}
			}
		}
		if every := t.tickEvery(); time.Until(due) > every {
			// Something began to wait on the tick.
			due = time.Now().Add(every)
			ticker.Reset(every)
		}
		if len(t.acks) >= flushAt {
			t.flushArmed = false
			flush.Stop()
			if err := t.flush(t.ctx); err != nil {
				return err
			}
		}
		if !t.flushArmed && (len(t.acks) > 0 || t.st.Dirty() || len(t.occupancy) > 0) {
			t.flushArmed = true
			flush.Reset(t.svc.opt.FlushInterval)
		}
	}
}

// tickEvery is the period of the loop's tick: tick while graces run,
// counts are throttled or member requests wait, else the reconcile
// interval.
func (t *term) tickEvery() time.Duration {
	if t.st.Holding() || len(t.counts) > 0 || len(t.waiting) > 0 {
		return tick
	}
	return min(t.svc.opt.ReconcileInterval, time.Minute)
}

// publishResync asks the gateways on subject for a snapshot.
func (t *term) publishResync(subject, reason string) {
	b, _ := json.Marshal(presence.ResyncRequest{Reason: reason})
	if err := t.svc.nc.Publish(subject, b); err != nil {
		t.svc.log.Warn("asking for a snapshot", "subject", subject, "err", err)
	}
}
