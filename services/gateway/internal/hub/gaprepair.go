package hub

// Gap repair of the live path.
//
// RePublish is at-most-once: a NATS reconnect, a slow-consumer drop or
// interest still spreading through a cluster can lose a live message, and
// the last event of a burst would then vanish without a trace. So, for every
// channel the hub holds, the stored events are delivered through a
// replay.Merger that knows the last sequence delivered: a live message whose
// Nats-Last-Sequence is newer than it shows a hole, which is read from the
// stream (Engine.Fill) and delivered first, in order. A lost message with
// nothing after it shows no hole, so the channel's tail is also read
// (Engine.CatchUp) right after the channel's subscription is made, after a
// NATS reconnect or a slow-consumer drop, and every TailCheck while the
// channel has traffic.
//
// Reads happen on a goroutine of their own while the channel is busy: its
// live messages wait in a backlog meanwhile, so other channels of the shard
// keep flowing and the channel keeps its order. With nothing missing, the
// dispatcher only parses the sequence headers and compares two numbers.
//
// Lock order: a channel's seq lock, then the shard lock (the repair reads
// the subscriber lists while it holds the seq lock); never the reverse.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/services/gateway/internal/replay"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/position"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// RepairOptions turn on gap repair of the live path. Zero values mean the
// defaults.
type RepairOptions struct {
	// Engine reads what live delivery missed. Nil turns gap repair off:
	// frames then go out as they arrive, as a plain relay.
	Engine *replay.Engine
	// Tick is how often NATS reconnects, dropped messages and newly made
	// channel subscriptions are looked at. Default 1 s.
	Tick time.Duration
	// TailCheck is how often a channel that had traffic within TailWindow
	// gets its tail read, which finds the loss of a burst's last event.
	// Default 5 s and 30 s: a few Direct Gets per active channel.
	TailCheck  time.Duration
	TailWindow time.Duration
	// Workers bounds the tail checks running at once after a reconnect,
	// when every channel is checked. Default 8.
	Workers int
	// Timeout bounds one repair's reads, retries included. Default 5 s.
	Timeout time.Duration

	// Recovered counts events that live delivery missed and the stream
	// supplied; Unrecoverable counts holes given up because the stream no
	// longer held what was missing. Both may be nil.
	Recovered     prometheus.Counter
	Unrecoverable prometheus.Counter
}

// Defaults of RepairOptions.
const (
	DefaultRepairTick    = time.Second
	DefaultTailCheck     = 5 * time.Second
	DefaultTailWindow    = 30 * time.Second
	DefaultRepairWorkers = 8
	DefaultRepairTimeout = 5 * time.Second
)

// repairAttempts bounds the reads of one hole when NATS errors; then the
// hole is given up so that live delivery goes on.
const repairAttempts = 3

// seqState is a channel's live sequence tracking.
type seqState struct {
	mu      sync.Mutex
	m       *replay.Merger // nil until the channel's start is known
	busy    bool           // a repair owns m; live events go to backlog
	again   bool           // a tail check was asked while busy
	backlog []replay.Event
	out     []replay.Event // the dispatcher's scratch

	lastLive atomic.Int64 // 1 + the repairer's tick of the last live event; 0: none
	listed   atomic.Bool  // in the repairer's active set
	drops    atomic.Int64 // NATS drops of the live subscription acted on

	// from is the stream's mark read before the channel's start (marks.go);
	// guarded by mu.
	from   replay.Mark
	fromOK bool
}

// eventTargets are a channel's EventSubscribers, guarded by the shard lock.
type eventTargets struct {
	bySub map[Subscriber]EventSubscriber
	list  []EventSubscriber // rebuilt with the channel's list
}

func (t *eventTargets) has(s Subscriber) bool {
	_, ok := t.bySub[s]
	return ok
}

func (t *eventTargets) rebuild() {
	list := make([]EventSubscriber, 0, len(t.bySub))
	for _, e := range t.bySub {
		list = append(list, e)
	}
	t.list = list
}

// repairer runs the reads of gap repair for one hub.
type repairer struct {
	h      *Hub
	opt    RepairOptions
	eng    *replay.Engine
	marks  *marks // marks.go
	ctx    context.Context
	cancel context.CancelFunc

	// ticks counts Tick periods: a coarse clock for the dispatchers.
	ticks atomic.Int64

	mu     sync.Mutex
	closed bool
	// fresh are the channels whose live subscription was just made, due
	// for their second check at the next tick; active those with live
	// traffic within TailWindow. A tick looks at these alone (and, after a
	// drop, at the channels of the shard that dropped it): a channel
	// without traffic costs nothing while the hub is quiet.
	fresh  []channelRef
	active map[*channel]*shard
	// looked counts the channels the ticks examined.
	looked atomic.Int64
}

func newRepairer(h *Hub, opt RepairOptions) *repairer {
	if opt.Engine == nil {
		return nil
	}
	option.Default(&opt.Tick, DefaultRepairTick)
	option.Default(&opt.TailCheck, DefaultTailCheck)
	option.Default(&opt.TailWindow, DefaultTailWindow)
	option.Default(&opt.Workers, DefaultRepairWorkers)
	option.Default(&opt.Timeout, DefaultRepairTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	return &repairer{
		h: h, opt: opt, eng: opt.Engine, marks: newMarks(opt.Engine), ctx: ctx, cancel: cancel,
		active: map[*channel]*shard{},
	}
}

// start runs the periodic checks; Hub.Close stops them.
func (rp *repairer) start() {
	rp.h.wg.Add(1)
	go rp.run()
}

// close stops new repairs and cancels those running. Hub.Close then waits
// for them.
func (rp *repairer) close() {
	rp.mu.Lock()
	rp.closed = true
	rp.mu.Unlock()
	rp.cancel()
}

// spawn runs f on a goroutine that Hub.Close waits for, unless the hub is
// closing.
func (rp *repairer) spawn(f func()) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed {
		return false
	}
	rp.h.wg.Add(1)
	go func() {
		defer rp.h.wg.Done()
		f()
	}()
	return true
}

// sync reads where a new channel stands, before its live subscription is
// made: every event after that point then arrives live or shows up in a
// tail check. On failure the channel starts from its first live message.
func (rp *repairer) sync(c *channel) {
	ctx, cancel := context.WithTimeout(rp.ctx, rp.opt.Timeout)
	defer cancel()
	from, fromOK := rp.marks.known(c.app)
	if !fromOK {
		mark, err := rp.marks.after(ctx, c.app)
		from, fromOK = mark, err == nil
	}
	p, err := rp.eng.LastStored(ctx, c.app, c.name)
	if err != nil {
		rp.h.log.Debug("channel position unknown; starting from live", "app_id", c.app, "channel", c.name, "err", err)
		return
	}
	c.seq.mu.Lock()
	c.seq.m = replay.NewMerger(p)
	c.seq.from, c.seq.fromOK = from, fromOK
	c.seq.mu.Unlock()
}

// subscribed runs once a new channel's live subscription is in place:
// events stored between sync and then arrived nowhere, so the tail is read
// now, and again at the next tick for interest still spreading through a
// cluster; either only if the stream stored anything since sync (marks.go).
func (rp *repairer) subscribed(sh *shard, c *channel) {
	rp.mu.Lock()
	rp.fresh = append(rp.fresh, channelRef{sh, c, true})
	rp.mu.Unlock()
	rp.spawn(func() {
		if !rp.unchanged(c) {
			rp.check(sh, c)
		}
	})
}

// deliverLive delivers one message of a channel's live subject through the
// channel's merger. The subscriber lists are read under the seq lock, as
// the repair reads them: a subscriber added meanwhile gets this event if it
// got the ones a repair delivered before it.
func (sh *shard) deliverLive(c *channel, m *nats.Msg) {
	ev, err := replay.FromLive(m)
	if err != nil {
		list, targets := sh.lists(c)
		// Not republished by the stream (no sequence): nothing to track.
		sh.h.log.Debug("live message without stream sequence", "subject", m.Subject, "err", err)
		name := m.Header.Get(names.HeaderEvent)
		if name == "" {
			return
		}
		frame := EventFrame(c.name, &replay.Event{Name: name, Data: m.Data}, 0, false)
		exclude := m.Header.Get(names.HeaderExclude)
		fanOut(list, frame, exclude)
		sendFrame(targets, frame, exclude)
		if sh.h.debug {
			sh.h.traceDelivered(c, name, m.Data, list, targets, exclude)
		}
		return
	}
	s := &c.seq
	if now := sh.h.rp.ticks.Load() + 1; s.lastLive.Load() != now {
		s.lastLive.Store(now)
		// Stored before listed is read, as the repairer clears listed
		// before it reads lastLive: one of the two sees the other.
		if s.listed.CompareAndSwap(false, true) {
			sh.h.rp.activate(sh, c)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		s.backlog = append(s.backlog, ev)
		return
	}
	out := s.add(s.out[:0], ev)
	if len(out) > 0 {
		list, targets := sh.lists(c)
		sh.sendEvents(c, out, list, targets)
	}
	clear(out)
	s.out = out[:0]
	if _, _, gap := s.m.Gap(); gap {
		s.busy = true
		if !sh.h.rp.spawn(func() { sh.repair(c, false) }) {
			s.busy = false
		}
	}
}

// add feeds one live event to the merger (made from the event when the
// channel's start is unknown). s.mu is held.
func (s *seqState) add(out []replay.Event, ev replay.Event) []replay.Event {
	if s.m == nil {
		s.m = replay.NewMerger(position.Position{Seq: ev.LastSeq})
	}
	s.m.Restart(&ev)
	return s.m.Add(out, ev)
}

// sendEvents fans events out: the plain frame to list, the Event to
// targets, each skipping the event's excluded socket.
func (sh *shard) sendEvents(c *channel, evs []replay.Event, list []Subscriber, targets []EventSubscriber) {
	for i := range evs {
		ev := &evs[i]
		if ev.Name == "" {
			sh.h.log.Debug("event without name", "app_id", c.app, "channel", c.name)
			continue
		}
		frame := EventFrame(c.name, ev, 0, false)
		fanOut(list, frame, ev.Exclude)
		if sh.h.debug {
			sh.h.traceDelivered(c, ev.Name, ev.Data, list, targets, ev.Exclude)
		}
		if len(targets) == 0 {
			continue
		}
		e := &Event{Event: *ev, channel: c.name, frame: frame}
		for _, t := range targets {
			if ev.Exclude != "" && t.SocketID() == ev.Exclude {
				continue
			}
			t.Deliver(e)
		}
	}
}

// sendFrame sends a frame that is not a stored event (a client event, a
// member event) to a channel's EventSubscribers.
func sendFrame(targets []EventSubscriber, frame []byte, exclude string) {
	for _, t := range targets {
		if exclude != "" && t.SocketID() == exclude {
			continue
		}
		t.Send(frame)
	}
}

// lists returns the channel's fan-out lists, rebuilding them if
// subscribers changed.
func (sh *shard) lists(c *channel) ([]Subscriber, []EventSubscriber) {
	sh.mu.RLock()
	list, targets, dirty := c.list, c.targets.list, c.dirty
	sh.mu.RUnlock()
	if dirty {
		sh.mu.Lock()
		list = c.snapshotLocked()
		targets = c.targets.list
		sh.mu.Unlock()
	}
	return list, targets
}

// check reads a channel's tail now, unless a repair is running (it then
// reads the tail once more before it ends).
func (rp *repairer) check(sh *shard, c *channel) {
	s := &c.seq
	s.mu.Lock()
	if s.m == nil {
		s.mu.Unlock()
		return
	}
	if s.busy {
		s.again = true
		s.mu.Unlock()
		return
	}
	s.busy = true
	s.mu.Unlock()
	sh.repair(c, true)
}

// repair owns a busy channel's merger: it reads what is missing (the hole,
// or with catchUp everything after the last delivered event), delivers it,
// then the backlog, until no hole is left, and hands the channel back to the
// dispatcher.
func (sh *shard) repair(c *channel, catchUp bool) {
	rp, s := sh.h.rp, &c.seq
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	var out []replay.Event
	for {
		out = rp.read(c, m, catchUp, out[:0])
		s.mu.Lock()
		for {
			if len(out) > 0 {
				list, targets := sh.lists(c)
				sh.sendEvents(c, out, list, targets)
				clear(out)
				out = out[:0]
			}
			m = s.m
			if _, _, gap := m.Gap(); gap {
				catchUp = false
				break
			}
			if len(s.backlog) > 0 {
				backlog := s.backlog
				s.backlog = nil
				for _, ev := range backlog {
					out = s.add(out, ev)
				}
				continue
			}
			if s.again {
				s.again, catchUp = false, true
				break
			}
			s.busy = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// read fills m from the stream (Engine.Repair): a hole still open after
// repairAttempts reads (NATS unreachable) is given up so that delivery goes
// on.
func (rp *repairer) read(c *channel, m *replay.Merger, catchUp bool, out []replay.Event) []replay.Event {
	ctx, cancel := context.WithTimeout(rp.ctx, rp.opt.Timeout)
	defer cancel()
	waiting, skipped := m.Pending(), m.Skipped()
	out, err := rp.eng.Repair(ctx, c.app, c.name, m, out, catchUp, repairAttempts)
	if err != nil {
		rp.h.log.Warn("live events not repaired", "app_id", c.app, "channel", c.name, "err", err)
	}
	// What came out beyond the live events that waited is what the stream
	// supplied.
	if n := len(out) - (waiting - m.Pending()); n > 0 && rp.opt.Recovered != nil {
		rp.opt.Recovered.Add(float64(n))
	}
	if lost := m.Skipped() - skipped; lost > 0 {
		rp.h.log.Warn("live events lost: the stream no longer holds them", "app_id", c.app, "channel", c.name, "holes", lost)
		if rp.opt.Unrecoverable != nil {
			rp.opt.Unrecoverable.Add(float64(lost))
		}
	}
	return out
}

// run looks, every Tick, for channels whose tail needs reading: all of them
// after a NATS reconnect, those whose live subscription dropped messages,
// those just subscribed, and every TailCheck those that had traffic within
// TailWindow: an event lost after a burst is found if it was stored within
// TailWindow of the burst's last delivered one.
func (rp *repairer) run() {
	defer rp.h.wg.Done()
	defer rp.cancel()
	t := time.NewTicker(rp.opt.Tick)
	defer t.Stop()
	reconnects := rp.h.nc.Stats().Reconnects
	seen := make([]int64, len(rp.h.shards))
	tailEvery := max(1, int64(rp.opt.TailCheck/rp.opt.Tick))
	window := max(tailEvery, int64(rp.opt.TailWindow/rp.opt.Tick))
	for {
		select {
		case <-t.C:
		case <-rp.h.done:
			return
		}
		tick := rp.ticks.Add(1)
		if !rp.h.nc.IsConnected() {
			continue // reads would fail; the reconnect brings a check of all
		}
		r := rp.h.nc.Stats().Reconnects
		all := r != reconnects
		reconnects = r
		if all {
			rp.h.log.Info("nats reconnected: reading every channel's tail")
		}
		rp.checkAll(rp.due(all, tick%tailEvery == 0, tick-window, seen))
	}
}

type channelRef struct {
	sh *shard
	c  *channel
	// fresh: due only as a new channel's second check, which the stream's
	// mark may spare.
	fresh bool
}

// activate adds a channel with live traffic to the active set.
func (rp *repairer) activate(sh *shard, c *channel) {
	rp.mu.Lock()
	rp.active[c] = sh
	rp.mu.Unlock()
}

// due lists the channels to check: every one after a reconnect (all), the
// fresh ones, those of a shard whose queue was full since seen (whose live
// subscription dropped messages), and with tail those with live traffic
// after tick since.
func (rp *repairer) due(all, tail bool, since int64, seen []int64) []channelRef {
	rp.mu.Lock()
	fresh := rp.fresh
	rp.fresh = nil
	var active []channelRef
	if tail {
		active = make([]channelRef, 0, len(rp.active))
		for c, sh := range rp.active {
			active = append(active, channelRef{sh, c, false})
		}
	}
	rp.mu.Unlock()
	rp.looked.Add(int64(len(fresh) + len(active)))

	byChannel := map[*channel]int{}
	var due []channelRef
	add := func(r channelRef) {
		if i, ok := byChannel[r.c]; ok {
			due[i].fresh = due[i].fresh && r.fresh
			return
		}
		byChannel[r.c] = len(due)
		due = append(due, r)
	}
	for i, sh := range rp.h.shards {
		if !all && !sh.mayHaveDropped(&seen[i]) {
			continue
		}
		sh.mu.RLock()
		rp.looked.Add(int64(len(sh.channels)))
		for _, c := range sh.channels {
			if all || rp.dropped(c) {
				add(channelRef{sh, c, false})
			}
		}
		sh.mu.RUnlock()
	}
	for _, r := range active {
		s := &r.c.seq
		// lastLive 0 is a channel that never had traffic; since is
		// negative during the first TailWindow of the hub.
		s.listed.Store(false)
		if last := s.lastLive.Load(); last != 0 && last-1 > since && r.sh.holds(r.c) {
			s.listed.Store(true)
			add(r)
			continue
		}
		rp.mu.Lock()
		if !s.listed.Load() {
			delete(rp.active, r.c)
		}
		rp.mu.Unlock()
	}
	for _, r := range fresh {
		if r.sh.holds(r.c) {
			add(r)
		}
	}
	return due
}

// dropped reports whether c's live subscription dropped messages since the
// last look. The shard lock is held.
func (rp *repairer) dropped(c *channel) bool {
	if c.liveSub == nil {
		return false
	}
	s := &c.seq
	n, err := c.liveSub.Dropped()
	if err != nil || int64(n) == s.drops.Load() {
		return false
	}
	s.drops.Store(int64(n))
	return true
}

// checkAll reads the tails of due channels, Workers at a time.
func (rp *repairer) checkAll(due []channelRef) {
	if len(due) == 0 {
		return
	}
	// The fresh channels of an app share one read of its mark, made
	// after every one of them started.
	type appMark struct {
		mark replay.Mark
		ok   bool
	}
	now := map[string]appMark{}
	for _, r := range due {
		if _, read := now[r.c.app]; r.fresh && !read {
			m, ok := rp.markAfter(r.c.app)
			now[r.c.app] = appMark{m, ok}
		}
	}
	next := make(chan channelRef)
	var wg sync.WaitGroup
	for range min(rp.opt.Workers, len(due)) {
		wg.Go(func() {
			for r := range next {
				if m := now[r.c.app]; r.fresh && m.ok && rp.unchangedSince(r.c, m.mark) {
					continue
				}
				rp.check(r.sh, r.c)
			}
		})
	}
	for _, r := range due {
		select {
		case next <- r:
		case <-rp.ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}
