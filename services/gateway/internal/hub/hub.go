// Package hub holds the channels that have subscribers on this gateway and
// fans NATS messages out to them.
//
// Each channel with local subscribers has one core NATS subscription on its
// live subject (channel events republished by the app's events stream),
// reference-counted and dropped Linger after the last subscriber left, so
// that NATS routes a channel's events only to gateways that need it. The
// subscriptions deliver into a few Go channels (shards, chosen by a hash of
// the channel), each drained by one dispatcher goroutine: a channel's
// messages are all handled by the same goroutine, in order, and there is no
// goroutine per subscription.
//
// Client events, rare and rate-limited, come on one wildcard subscription of
// all apps' client-event subjects, made with the first channel: a channel
// costs one subscription here and in the NATS server rather than two. Its
// callback delivers each to the channel's local subscribers, if any, in the
// order received; there is no order between a channel's client events and
// its stored events, which come from other publishers.
//
// Each message's frame is encoded once and the same bytes are queued on every
// local subscriber except the socket named in its Herald-Exclude header.
//
// With gap repair on (Options.Repair), a channel's stored events go out in
// sequence order, each once, with what live delivery missed read from the
// stream first (gaprepair.go); subscribers that opted in to positions get
// them as Events (event.go).
//
// Lock order: presence channel lock, then a channel's seq lock, then shard
// lock. Subscriber.Send is called with a shard lock held only for the first
// frame of a subscription, and must never block.
package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Subscriber is one local connection.
type Subscriber interface {
	SocketID() string
	// Send queues a frame without blocking; the frame is shared and must
	// not be changed.
	Send(frame []byte) bool
}

// Options tune the hub. Zero values mean the defaults.
type Options struct {
	// Shards is the number of dispatcher goroutines (default GOMAXPROCS,
	// at least 2).
	Shards int
	// ShardQueue is how many messages may wait for one dispatcher; beyond
	// it NATS drops messages (counted in NATSDropped). Default 65536.
	ShardQueue int
	// Linger is how long a channel's NATS subscriptions outlive its last
	// local subscriber, so that a page reload does not resubscribe.
	// Default 5 s.
	Linger time.Duration
	// FlushTimeout bounds the wait for NATS to confirm a new channel's
	// subscriptions before the subscriber is told it is subscribed.
	// Default 2 s.
	FlushTimeout time.Duration
	// DropCheck is how often dropped NATS messages are counted. Default 5 s.
	DropCheck time.Duration

	Logger      *slog.Logger
	NATSDropped prometheus.Counter // may be nil
	// LogPayloads adds each event's data to the debug lines of delivered
	// events (HERALD_LOG_PAYLOADS).
	LogPayloads bool

	// Repair turns on gap repair of the live path (gaprepair.go).
	Repair RepairOptions
}

// Defaults of Options.
const (
	DefaultShardQueue   = 1 << 16
	DefaultLinger       = 5 * time.Second
	DefaultFlushTimeout = 2 * time.Second
	DefaultDropCheck    = 5 * time.Second
)

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("hub: closed")

// Hub is the set of channels with local subscribers.
type Hub struct {
	nc     *nats.Conn
	opt    Options
	log    *slog.Logger
	shards []*shard
	rp     *repairer // nil without gap repair
	debug  bool      // log each delivered event (trace.go)

	// clientMu guards clientSub, the subscription of every client-event
	// subject (clientEvents).
	clientMu      sync.Mutex
	clientSub     *nats.Subscription
	clientDropped int // its NATS drops already counted

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

type shard struct {
	h  *Hub
	in chan *nats.Msg
	// fulls counts the messages the dispatcher took from a full queue.
	// NATS drops a channel's message only when the queue is full, so the
	// drop counts of the shard's subscriptions are read only after it
	// moved: a quiet hub reads none (countDrops, repairer.due).
	fulls atomic.Int64

	mu       sync.RWMutex
	closed   bool
	channels map[string]*channel // by live subject
}

type channel struct {
	app, name string
	live      string

	// Guarded by the shard lock.
	refs  int    // subscribers, including those waiting for ready
	gen   uint64 // bumped on every new reference: cancels a pending expiry
	subs  map[Subscriber]struct{}
	list  []Subscriber // copy of subs for fan-out; rebuilt when dirty
	dirty bool
	// targets are the subscribers that get Events; guarded by the shard
	// lock. seq tracks the live sequence (gaprepair.go).
	targets eventTargets
	seq     seqState

	ready   chan struct{} // closed once the NATS subscription is made
	err     error         // why it could not be; set before ready closes
	liveSub *nats.Subscription
	dropped int // NATS drops already counted
}

// New starts the hub's dispatchers on nc, which the caller keeps owning.
func New(nc *nats.Conn, opt Options) *Hub {
	option.Default(&opt.Shards, max(2, runtime.GOMAXPROCS(0)))
	option.Default(&opt.ShardQueue, DefaultShardQueue)
	option.Default(&opt.Linger, DefaultLinger)
	option.Default(&opt.FlushTimeout, DefaultFlushTimeout)
	option.Default(&opt.DropCheck, DefaultDropCheck)
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{nc: nc, opt: opt, log: opt.Logger, done: make(chan struct{}), debug: debugEnabled(opt.Logger)}
	for range opt.Shards {
		sh := &shard{
			h:        h,
			in:       make(chan *nats.Msg, opt.ShardQueue),
			channels: map[string]*channel{},
		}
		h.shards = append(h.shards, sh)
		h.wg.Add(1)
		go sh.dispatch()
	}
	h.wg.Add(1)
	go h.countDrops()
	if h.rp = newRepairer(h, opt.Repair); h.rp != nil {
		h.rp.start()
	}
	return h
}

// shardFor picks the shard of a channel by its live subject (FNV-1a).
func (h *Hub) shardFor(live string) *shard {
	var x uint32 = 2166136261
	for i := 0; i < len(live); i++ {
		x ^= uint32(live[i])
		x *= 16777619
	}
	return h.shards[x%uint32(len(h.shards))]
}

// Subscribe adds s to a channel. The first frame (subscription_succeeded) is
// queued on s before any event of the channel, and once Subscribe returns
// every event NATS receives for the channel reaches s.
func (h *Hub) Subscribe(appID, channelName string, s Subscriber, first []byte) error {
	return h.subscribe(appID, channelName, s, first, nil)
}

// SubscribeEvents adds s to a channel with t receiving its frames: the
// channel's stored events through t.Deliver, anything else through t.Send.
// Once it returns, every event delivered on the channel reaches t.
// Unsubscribe(s) removes t.
func (h *Hub) SubscribeEvents(appID, channelName string, s Subscriber, t EventSubscriber) error {
	return h.subscribe(appID, channelName, s, nil, t)
}

func (h *Hub) subscribe(appID, channelName string, s Subscriber, first []byte, t EventSubscriber) error {
	live := names.LiveSubject(appID, channelName)
	sh := h.shardFor(live)
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return ErrClosed
	}
	c := sh.channels[live]
	create := c == nil
	if create {
		c = &channel{
			app: appID, name: channelName, live: live,
			subs:  map[Subscriber]struct{}{},
			ready: make(chan struct{}),
		}
		sh.channels[live] = c
	}
	c.refs++
	c.gen++
	sh.mu.Unlock()

	if create {
		c.err = h.natsSubscribe(sh, c)
		close(c.ready)
	}
	<-c.ready
	if c.err != nil {
		sh.mu.Lock()
		h.releaseLocked(sh, c)
		sh.mu.Unlock()
		return c.err
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return ErrClosed
	}
	if _, dup := c.subs[s]; dup {
		c.refs-- // already counted by the earlier Subscribe
	} else {
		c.subs[s] = struct{}{}
		c.dirty = true
	}
	if t != nil {
		if c.targets.bySub == nil {
			// Made for the first subscriber with positions: most
			// channels have none.
			c.targets.bySub = map[Subscriber]EventSubscriber{}
		}
		c.targets.bySub[s] = t
		c.dirty = true
	}
	if first != nil {
		s.Send(first)
	}
	return nil
}

// natsSubscribe makes a new channel's subscription (and the client events'
// one, the first time) and waits until the server has them. A failed flush
// is not an error: the subscriptions are in place and nats.go resends them
// when it reconnects.
func (h *Hub) natsSubscribe(sh *shard, c *channel) error {
	if err := h.clientEvents(); err != nil {
		return err
	}
	if h.rp != nil {
		h.rp.sync(c)
		if afterSync != nil {
			afterSync(c)
		}
	}
	live, err := h.nc.ChanSubscribe(c.live, sh.in)
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", c.live, err)
	}
	sh.mu.Lock()
	closed := sh.closed
	if !closed {
		c.liveSub = live
	}
	sh.mu.Unlock()
	if closed {
		_ = live.Unsubscribe()
		return ErrClosed
	}
	if err := h.nc.FlushTimeout(h.opt.FlushTimeout); err != nil {
		h.log.Debug("nats flush after subscribe", "subject", c.live, "err", err)
	}
	if h.rp != nil {
		h.rp.subscribed(sh, c)
	}
	return nil
}

// clientEvents makes the subscription of every client-event subject unless
// it exists.
func (h *Hub) clientEvents() error {
	h.clientMu.Lock()
	defer h.clientMu.Unlock()
	if h.clientSub != nil {
		return nil
	}
	select {
	case <-h.done:
		return ErrClosed
	default:
	}
	sub, err := h.nc.Subscribe(names.ClientEventSubjects(), h.deliverClient)
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", names.ClientEventSubjects(), err)
	}
	h.clientSub = sub
	return nil
}

// afterSync, set by tests only, runs between a new channel's sync and its
// live subscription.
var afterSync func(*channel)

// Unsubscribe removes s from a channel.
func (h *Hub) Unsubscribe(appID, channelName string, s Subscriber) {
	live := names.LiveSubject(appID, channelName)
	sh := h.shardFor(live)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.channels[live]
	if c == nil {
		return
	}
	if _, ok := c.subs[s]; !ok {
		return
	}
	delete(c.subs, s)
	delete(c.targets.bySub, s)
	c.dirty = true
	h.releaseLocked(sh, c)
}

// releaseLocked drops one reference; the last one schedules the channel's
// expiry (or removes a channel whose subscriptions failed at once).
func (h *Hub) releaseLocked(sh *shard, c *channel) {
	c.refs--
	if c.refs > 0 || sh.closed {
		return
	}
	if c.err != nil {
		sh.removeLocked(c)
		return
	}
	gen := c.gen
	time.AfterFunc(h.opt.Linger, func() { sh.expire(c, gen) })
}

func (sh *shard) expire(c *channel, gen uint64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed || c.refs > 0 || c.gen != gen || sh.channels[c.live] != c {
		return
	}
	sh.removeLocked(c)
}

// removeLocked forgets a channel and drops its NATS subscriptions.
func (sh *shard) removeLocked(c *channel) {
	delete(sh.channels, c.live)
	sh.countDropsLocked(c)
	if c.liveSub != nil {
		_ = c.liveSub.Unsubscribe()
	}
}

// Local sends a frame to this gateway's subscribers of a channel, except the
// socket exclude. Presence member events use it.
func (h *Hub) Local(appID, channelName string, frame []byte, exclude string) {
	live := names.LiveSubject(appID, channelName)
	sh := h.shardFor(live)
	list, targets := sh.subscribers(live)
	fanOut(list, frame, exclude)
	sendFrame(targets, frame, exclude)
}

// PublishClientEvent relays a client event to every gateway (this one
// included) on core NATS.
func (h *Hub) PublishClientEvent(ev events.ClientEvent) error {
	if err := h.nc.PublishMsg(ev.Msg()); err != nil {
		return fmt.Errorf("publishing client event on %s: %w", names.ClientEventSubject(ev.AppID, ev.Channel), err)
	}
	return nil
}

// Channels reports how many channels have NATS subscriptions.
func (h *Hub) Channels() int {
	n := 0
	for _, sh := range h.shards {
		sh.mu.RLock()
		n += len(sh.channels)
		sh.mu.RUnlock()
	}
	return n
}

// Close stops the dispatchers and drops every NATS subscription. Subscribe
// fails afterwards; Unsubscribe and Local do nothing.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		if h.rp != nil {
			h.rp.close()
		}
		for _, sh := range h.shards {
			sh.mu.Lock()
			sh.closed = true
			for _, c := range sh.channels {
				sh.removeLocked(c)
			}
			sh.mu.Unlock()
		}
		close(h.done)
		h.clientMu.Lock()
		if h.clientSub != nil {
			_ = h.clientSub.Unsubscribe()
		}
		h.clientMu.Unlock()
		h.wg.Wait()
	})
}

// subscribers returns the fan-out lists of the channel with that live
// subject, rebuilding them if subscribers changed.
func (sh *shard) subscribers(live string) ([]Subscriber, []EventSubscriber) {
	sh.mu.RLock()
	c := sh.channels[live]
	sh.mu.RUnlock()
	if c == nil {
		return nil, nil
	}
	return sh.lists(c)
}

// snapshotLocked rebuilds the fan-out list when subscribers changed. The old
// list may still be in use by a fan-out, so it is replaced, never modified.
func (c *channel) snapshotLocked() []Subscriber {
	if c.dirty {
		list := make([]Subscriber, 0, len(c.subs))
		for s := range c.subs {
			if !c.targets.has(s) {
				list = append(list, s)
			}
		}
		c.targets.rebuild()
		c.list, c.dirty = list, false
	}
	return c.list
}

func (sh *shard) dispatch() {
	defer sh.h.wg.Done()
	for {
		select {
		case m := <-sh.in:
			// The queue only grows between two receives: if it was full
			// at any moment since the last one, it was just before this.
			if len(sh.in) >= cap(sh.in)-1 {
				sh.fulls.Add(1)
			}
			sh.deliver(m)
		case <-sh.h.done:
			return
		}
	}
}

// deliver fans one live message out to the channel's local subscribers.
func (sh *shard) deliver(m *nats.Msg) {
	sh.mu.RLock()
	c := sh.channels[m.Subject]
	sh.mu.RUnlock()
	if c == nil {
		return
	}
	if sh.h.rp != nil {
		// Tracked even without subscribers: a lingering channel must know
		// its last sequence when a subscriber comes back.
		sh.deliverLive(c, m)
		return
	}
	sh.deliverFrame(c, m, false)
}

// deliverClient fans a client event out to the local subscribers of its
// channel, if there are any.
func (h *Hub) deliverClient(m *nats.Msg) {
	live, ok := names.LiveSubjectOfClient(m.Subject)
	if !ok {
		return
	}
	sh := h.shardFor(live)
	sh.mu.RLock()
	c := sh.channels[live]
	sh.mu.RUnlock()
	if c != nil {
		sh.deliverFrame(c, m, true)
	}
}

// deliverFrame encodes the frame of a message that is not tracked by
// sequence (a client event, or any event without gap repair) and fans it
// out.
func (sh *shard) deliverFrame(c *channel, m *nats.Msg, isClient bool) {
	list, targets := sh.lists(c)
	if len(list) == 0 && len(targets) == 0 {
		return
	}
	event := m.Header.Get(names.HeaderEvent)
	if event == "" {
		sh.h.log.Debug("message without event name", "subject", m.Subject)
		return
	}
	var extra []byte
	if isClient {
		if uid := m.Header.Get(names.HeaderUserID); uid != "" {
			extra = userIDMember(uid)
		}
	}
	frame := protocol.EventFrame(event, c.name, string(m.Data), extra)
	exclude := m.Header.Get(names.HeaderExclude)
	fanOut(list, frame, exclude)
	sendFrame(targets, frame, exclude)
	if sh.h.debug {
		sh.h.traceDelivered(c, event, m.Data, list, targets, exclude)
	}
}

// userIDMember is the top-level `"user_id":"…"` of a presence client event.
func userIDMember(uid string) []byte {
	q, _ := json.Marshal(uid) // a string always marshals
	return append([]byte(`"user_id":`), q...)
}

func fanOut(list []Subscriber, frame []byte, exclude string) {
	for _, s := range list {
		if exclude != "" && s.SocketID() == exclude {
			continue
		}
		s.Send(frame)
	}
}

// countDrops adds NATS's dropped-message counts to NATSDropped now and then.
func (h *Hub) countDrops() {
	defer h.wg.Done()
	if h.opt.NATSDropped == nil {
		return
	}
	t := time.NewTicker(h.opt.DropCheck)
	defer t.Stop()
	seen := make([]int64, len(h.shards))
	for {
		select {
		case <-t.C:
			for i, sh := range h.shards {
				if !sh.mayHaveDropped(&seen[i]) {
					continue
				}
				sh.mu.Lock()
				for _, c := range sh.channels {
					sh.countDropsLocked(c)
				}
				sh.mu.Unlock()
			}
			h.countClientDrops()
		case <-h.done:
			return
		}
	}
}

// countClientDrops adds the client-event subscription's drops to
// NATSDropped.
func (h *Hub) countClientDrops() {
	h.clientMu.Lock()
	defer h.clientMu.Unlock()
	if h.clientSub == nil {
		return
	}
	if n, err := h.clientSub.Dropped(); err == nil && n > h.clientDropped {
		h.opt.NATSDropped.Add(float64(n - h.clientDropped))
		h.clientDropped = n
	}
}

// mayHaveDropped reports whether the shard's queue was full since the
// count *seen, and moves *seen up. A message is dropped with the
// subscription's lock held until its drop is counted, and the dispatcher
// sees the full queue only after the failed send: a drop count read after
// this reports true includes the drop.
func (sh *shard) mayHaveDropped(seen *int64) bool {
	n := sh.fulls.Load()
	if n == *seen {
		return false
	}
	*seen = n
	return true
}

func (sh *shard) countDropsLocked(c *channel) {
	if sh.h.opt.NATSDropped == nil {
		return
	}
	if c.liveSub == nil {
		return
	}
	if n, err := c.liveSub.Dropped(); err == nil && n > c.dropped {
		sh.h.opt.NATSDropped.Add(float64(n - c.dropped))
		c.dropped = n
	}
}

// holds reports whether c is still the shard's channel of its subject.
func (sh *shard) holds(c *channel) bool {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.channels[c.live] == c
}
