package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	svc   *Service
	in    *infra
	ctx   context.Context
	st    *state.State
	store *store
	meta  presence.Meta
	hb    *heartbeats

	msgs chan jetstream.Msg
	reqs chan *nats.Msg
	fail chan error

	// applied is the highest operation sequence seen in this term; target
	// the last one stored when it began. Member lists are answered only once
	// applied reaches target, when the state again reflects every member
	// event stored.
	applied, target uint64
	// acks wait for the flush that persists what their operations did.
	acks []ackable
	// held are the parts of unfinished snapshots, by gateway.
	held map[string]*heldSnapshot
	// events are member events published and not yet acknowledged.
	events []jetstream.PubAckFuture
	// hooks are webhook batches queued and not yet acknowledged.
	hooks     []jetstream.PubAckFuture
	epoch     string
	memberPos uint64
	refused   map[uint64]refusal
	parked    []*memberRequest
	occupancy []state.Occupancy
	counts    map[state.Key]*countState
	flushDue  bool
}

type ackable struct {
	seq uint64
	msg jetstream.Msg
}

type heldSnapshot struct {
	id    string
	subs  []presence.Sub
	users []presence.SignedIn
	msgs  []ackable
}

type refusal struct {
	status string
	at     time.Time
}

type countState struct {
	last    time.Time
	pending bool
}

type memberRequest struct {
	msg      *nats.Msg
	req      presence.MembersRequest
	deadline time.Time
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

	t := &term{svc: s, in: in, ctx: ctx, msgs: make(chan jetstream.Msg, 1024), reqs: make(chan *nats.Msg, 1024),
		fail: make(chan error, 4), held: map[string]*heldSnapshot{}, refused: map[uint64]refusal{},
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
	t.epoch = epoch
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
	t.memberPos = membersInfo.State.LastSeq

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
	sub, err := s.nc.ChanQueueSubscribe(names.PresenceMembersSubject, names.PresenceQueueGroup, t.reqs)
	if err != nil {
		return stop, fmt.Errorf("subscribing to member requests: %w", err)
	}
	stops = append(stops, func() { _ = sub.Unsubscribe() })
	osub, err := s.nc.ChanQueueSubscribe(names.PresenceOnlineSubject, names.PresenceQueueGroup, t.reqs)
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
			case strings.HasPrefix(e.Key(), "ch."):
				var cs presence.ChannelState
				if err := json.Unmarshal(e.Value(), &cs); err != nil {
					return fmt.Errorf("loading %s: %w", e.Key(), err)
				}
				t.st.Load(cs)
			case strings.HasPrefix(e.Key(), "us."):
				var u presence.UserState
				if err := json.Unmarshal(e.Value(), &u); err != nil {
					return fmt.Errorf("loading %s: %w", e.Key(), err)
				}
				t.st.LoadUser(u)
			case strings.HasPrefix(e.Key(), "gw."):
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
			case t.msgs <- m:
			case <-t.ctx.Done():
				return
			}
		}
	}()
	return nil
}

func (t *term) loop() error {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
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
		case m := <-t.msgs:
			if err := t.handle(m); err != nil {
				return err
			}
			// Take what else is queued before answering, so that one
			// round trip settles the events of many operations.
			if err := t.handleQueued(512); err != nil {
				return err
			}
			if err := t.answerParked(); err != nil {
				return err
			}
		case m := <-t.reqs:
			if err := t.request(m); err != nil {
				return err
			}
		case <-flush.C:
			t.flushDue = false
			if err := t.flush(t.ctx); err != nil {
				return err
			}
		case now := <-ticker.C:
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
				for seq, r := range t.refused {
					if now.Sub(r.at) > requestTTL {
						delete(t.refused, seq)
					}
				}
			}
		}
		if len(t.acks) >= flushAt {
			t.flushDue = false
			flush.Stop()
			if err := t.flush(t.ctx); err != nil {
				return err
			}
		}
		if !t.flushDue && (len(t.acks) > 0 || t.st.Dirty() || len(t.occupancy) > 0) {
			t.flushDue = true
			flush.Reset(t.svc.opt.FlushInterval)
		}
	}
}

// handleQueued handles up to n operations already delivered.
func (t *term) handleQueued(n int) error {
	for ; n > 0; n-- {
		select {
		case m := <-t.msgs:
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
	return t.apply(seq, &op)
}

// snapshotPart collects the parts of a gateway's snapshot, and applies it
// whole with the last one. Parts are acknowledged only then, so that a
// restart replays the snapshot from its first part.
func (t *term) snapshotPart(seq uint64, m jetstream.Msg, op *presence.Op) error {
	h := t.held[op.Gateway]
	if h != nil && h.id != op.SnapshotID {
		// A newer snapshot supersedes an unfinished one.
		t.discardHeld(op.Gateway)
		h = nil
	}
	if h == nil {
		if op.Part != 0 {
			// The start of this snapshot was lost: the gateway sends
			// another when it sees its publish fail.
			t.acks = append(t.acks, ackable{seq, m})
			return nil
		}
		h = &heldSnapshot{id: op.SnapshotID}
		t.held[op.Gateway] = h
	}
	h.subs = append(h.subs, op.Subs...)
	h.users = append(h.users, op.Users...)
	h.msgs = append(h.msgs, ackable{seq, m})
	if !op.Last {
		return nil
	}
	delete(t.held, op.Gateway)
	t.acks = append(t.acks, h.msgs...)
	whole := *op
	whole.Subs, whole.Users = h.subs, h.users
	return t.apply(seq, &whole)
}

func (t *term) discardHeld(gw string) {
	if h := t.held[gw]; h != nil {
		t.acks = append(t.acks, h.msgs...)
		delete(t.held, gw)
	}
}

func (t *term) isHeld(seq uint64) bool {
	for _, h := range t.held {
		for _, a := range h.msgs {
			if a.seq == seq {
				return true
			}
		}
	}
	return false
}

func (t *term) apply(seq uint64, op *presence.Op) error {
	fx := t.st.Apply(seq, op, time.Now())
	result := "applied"
	if fx.Refused != "" {
		result = "ignored"
		if op.Op == presence.Join {
			t.refused[seq] = refusal{fx.Refused, time.Now()}
		}
	}
	t.svc.metrics.ops.WithLabelValues(result).Inc()
	return t.effects(fx, t.epoch+"-"+strconv.FormatUint(seq, 10))
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
		t.events = append(t.events, f)
		t.svc.metrics.memberEvents.Inc()
		if len(t.events) >= maxUnsettled {
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

// publishUsers tells gateways of users coming online and going offline, one
// message per run of changes of one app and kind. Core NATS: a watcher that
// misses one sees the truth at its next sign-in.
func (t *term) publishUsers(changes []state.UserChange) {
	for i := 0; i < len(changes); {
		j := i
		ev := presence.WatchlistEvent{Name: presence.Offline}
		if changes[i].Online {
			ev.Name = presence.Online
		}
		for ; j < len(changes) && changes[j].App == changes[i].App && changes[j].Online == changes[i].Online; j++ {
			ev.UserIDs = append(ev.UserIDs, changes[j].UserID)
		}
		b, err := json.Marshal(ev)
		if err == nil {
			err = t.svc.nc.Publish(names.UserStatusSubject(changes[i].App), b)
		}
		if err != nil {
			t.svc.log.Warn("publishing user status", "app_id", changes[i].App, "err", err)
		}
		i = j
	}
}

// online answers which watched users are online. Like member lists, only
// once the term has applied what was stored when it began.
func (t *term) online(m *nats.Msg) {
	var req presence.OnlineRequest
	rep := presence.OnlineReply{Status: presence.StatusOK}
	switch {
	case json.Unmarshal(m.Data, &req) != nil || req.App == "" || len(req.UserIDs) > presence.MaxWatchlist:
		rep.Status = presence.StatusRefused
	case t.applied < t.target:
		rep.Status = presence.StatusRefused
	default:
		rep.Online = t.st.Online(req.App, req.UserIDs)
	}
	b, err := json.Marshal(rep)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		t.svc.log.Warn("answering an online request", "subject", m.Subject, "err", err)
	}
}

// settle waits until every member event published is stored, and moves
// memberPos past them.
func (t *term) settle(ctx context.Context) error {
	for _, f := range t.events {
		select {
		case ack := <-f.Ok():
			t.memberPos = max(t.memberPos, ack.Sequence)
		case err := <-f.Err():
			return fmt.Errorf("storing a member event: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.events = t.events[:0]
	for _, f := range t.hooks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("queueing a webhook: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	t.hooks = t.hooks[:0]
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
	slices.SortFunc(t.acks, func(a, b ackable) int { return compareSeq(a.seq, b.seq) })
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
	for _, h := range t.held {
		if len(h.msgs) > 0 {
			up = min(up, h.msgs[0].seq-1)
		}
	}
	return max(up, t.meta.Applied)
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// request takes one member list request.
func (t *term) request(m *nats.Msg) error {
	if m.Subject == names.PresenceOnlineSubject {
		t.online(m)
		return nil
	}
	var req presence.MembersRequest
	if err := json.Unmarshal(m.Data, &req); err != nil || req.App == "" || req.Channel == "" {
		t.reply(m, presence.MembersReply{Status: presence.StatusRefused, Error: "malformed request"})
		return nil
	}
	t.parked = append(t.parked, &memberRequest{msg: m, req: req, deadline: time.Now().Add(requestTTL)})
	return t.answerParked()
}

// answerParked answers the requests whose operation has been applied.
func (t *term) answerParked() error {
	if len(t.parked) == 0 || t.applied < t.target {
		return nil
	}
	ready := false
	for _, r := range t.parked {
		if r.req.OpSeq <= t.applied {
			ready = true
			break
		}
	}
	if !ready {
		return nil
	}
	if err := t.settle(t.ctx); err != nil {
		return err
	}
	kept := t.parked[:0]
	for _, r := range t.parked {
		if r.req.OpSeq > t.applied {
			kept = append(kept, r)
			continue
		}
		rep := presence.MembersReply{Status: presence.StatusOK, Seq: t.memberPos}
		if ref, ok := t.refused[r.req.OpSeq]; ok {
			rep.Status = ref.status
		} else {
			rep.Members = t.st.Members(state.Key{App: r.req.App, Channel: r.req.Channel})
		}
		t.reply(r.msg, rep)
	}
	clear(t.parked[len(kept):])
	t.parked = kept
	return nil
}

func (t *term) expireRequests(now time.Time) {
	kept := t.parked[:0]
	for _, r := range t.parked {
		if now.Before(r.deadline) {
			kept = append(kept, r)
		}
	}
	clear(t.parked[len(kept):])
	t.parked = kept
}

func (t *term) reply(m *nats.Msg, rep presence.MembersReply) {
	t.svc.metrics.requests.WithLabelValues(rep.Status).Inc()
	b, err := json.Marshal(rep)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		t.svc.log.Warn("answering a member request", "subject", m.Subject, "err", err)
	}
}

// countChanged publishes a channel's count at once if none went out within
// the interval, and otherwise marks it for the next tick after it.
func (t *term) countChanged(k state.Key, now time.Time) {
	if !t.svc.wantsCounts(k.App) && !t.svc.wantsCountHooks(k.App) {
		return
	}
	c := t.counts[k]
	if c == nil {
		c = &countState{}
		t.counts[k] = c
	}
	if now.Sub(c.last) >= t.svc.opt.CountInterval {
		t.publishCount(k, c, now)
		return
	}
	c.pending = true
}

func (t *term) publishCounts(now time.Time) {
	for k, c := range t.counts {
		switch {
		case c.pending && now.Sub(c.last) >= t.svc.opt.CountInterval:
			t.publishCount(k, c, now)
		case !c.pending && now.Sub(c.last) >= t.svc.opt.CountInterval:
			delete(t.counts, k)
		}
	}
}

func (t *term) publishCount(k state.Key, c *countState, now time.Time) {
	c.last, c.pending = now, false
	n := t.st.Count(k)
	if t.svc.wantsCounts(k.App) {
		if err := t.svc.nc.Publish(names.SubscriptionCountSubject(k.App, k.Channel), presence.CountData(n)); err != nil {
			t.svc.log.Warn("publishing a subscription count", "app_id", k.App, "channel", k.Channel, "err", err)
		}
	}
	if err := t.queueCountWebhook(k, n, now); err != nil {
		t.svc.log.Warn("queueing a subscription_count webhook", "app_id", k.App, "channel", k.Channel, "err", err)
	}
}

func (t *term) publishResync(subject, reason string) {
	b, _ := json.Marshal(presence.ResyncRequest{Reason: reason})
	if err := t.svc.nc.Publish(subject, b); err != nil {
		t.svc.log.Warn("asking for a snapshot", "subject", subject, "err", err)
	}
}
