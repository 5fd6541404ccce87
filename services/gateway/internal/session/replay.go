package session

// Herald's replay extension and cache channels, per subscription.
//
// A subscribe that opts in to positions ("positions", "resume", "rewind"),
// and any subscribe to a cache channel, becomes a stream subscription: the
// hub hands it the channel's events as hub.Events (with sequences), and it
// runs a goroutine of its own that reads history, sends, in this order,
// subscription_succeeded (with "position" when opted in), the cached last
// event or pusher:cache_miss (cache channels without resume or rewind), the
// replayed events, herald:resumed or herald:resume_failed, and then switches
// to live. Everything the hub delivers meanwhile waits in the
// subscription's buffer and goes through the same replay.Merger as the
// history, so that across the switch nothing is lost or sent twice.
//
// The replay is paced by the connection's writer (ws.Writer.WaitRoom): it
// never fills more than half the send queue, so a long replay to a slow
// client does not close it as a slow consumer. History is read in pages
// (replay.Options.PageBytes), and a connection holds one page at a time
// (Session.history), whatever the size of the history and however many of
// its channels resume at once: the next page is read when the last one has
// gone into the send queue. A page that left the stream in the meantime (a
// client slower than the replay window) ends the replay with
// herald:resume_failed window_exceeded after the events already sent.
//
// The goroutine touches only the subscription's own state, the connection
// and the engine; the session's goroutine stops it when the channel is left.

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/herald-ws/herald/services/gateway/internal/hub"
	"github.com/herald-ws/herald/services/gateway/internal/metrics"
	"github.com/herald-ws/herald/services/gateway/internal/replay"
	"github.com/herald-ws/herald/shared/position"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/webhooks"
)

// Replay is what a session needs for the replay extension and cache
// channels. Without an Engine, subscribes ignore positions, resume and
// rewind, and cache channels behave as plain ones.
type Replay struct {
	Engine  *replay.Engine
	Metrics *metrics.Replay // may be nil
}

// maxSocketIDs bounds the socket_ids of one subscribe that are honoured;
// the companion sends at most 16.
const maxSocketIDs = 64

// stream is one stream subscription (see the top of this file).
type stream struct {
	s       *Session // only fields that never change after New are read
	channel string
	// positioned: frames carry positions; cache: send the cached event
	// first; resume and rewind: what the client asked for.
	positioned bool
	cache      bool
	resume     string
	rewind     *int
	exclude    []string                   // this socket and the socket_ids of the subscribe
	encode     func(*replay.Event) []byte // encodePositioned, made once
	// data is the data object of subscription_succeeded (the members on a
	// presence channel), set before the hub delivers anything.
	data []byte

	holding bool // holds Session.history; only run touches it

	done     chan struct{} // closed by stop
	stopOnce sync.Once
	cancel   context.CancelFunc
	ctx      context.Context

	mu      sync.Mutex
	stopped bool
	live    bool
	held    replay.Hold[heldItem] // delivered by the hub before the switch to live
	last    position.Position
	epoch   position.Epoch
	posOK   bool // epoch known and positions asked for
}

// heldItem is what the hub delivered before the switch to live.
type heldItem struct {
	ev    *hub.Event // a stored event, or
	frame []byte     // any other frame of the channel
}

// newStream returns the stream subscription a subscribe needs, or nil for a
// plain one.
func (s *Session) newStream(ch string, d *protocol.SubscribeData) *stream {
	cache := protocol.IsCache(ch)
	if s.replay.Engine == nil || !(d.Positions || d.Resume != "" || d.Rewind != nil || cache) {
		return nil
	}
	r := &stream{
		s:          s,
		channel:    ch,
		positioned: d.Positions || d.Resume != "" || d.Rewind != nil,
		resume:     d.Resume,
		exclude:    []string{s.id},
		done:       make(chan struct{}),
	}
	if r.resume == "" {
		r.rewind = d.Rewind // resume wins when both are given
	}
	r.cache = cache && r.resume == "" && r.rewind == nil
	for _, id := range d.SocketIDs[:min(len(d.SocketIDs), maxSocketIDs)] {
		if id != "" && id != s.id {
			r.exclude = append(r.exclude, id)
		}
	}
	r.encode = r.encodePositioned
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// hubSubscribe puts the session on a channel, with subscription_succeeded
// carrying data: as the stream subscription r when subscribe prepared one,
// else (r nil) as a plain one that gets succeeded at once.
func (s *Session) hubSubscribe(ch string, data []byte, r *stream) error {
	if r != nil {
		r.data = data
		return s.hub.SubscribeEvents(s.app.ID, ch, s, r)
	}
	return s.hub.Subscribe(s.app.ID, ch, s, succeeded(ch, data))
}

// startStream starts the stream subscription r prepared for a subscribe,
// once the hub has it (err nil), and returns it; nil when there is none.
func startStream(r *stream, err error) *stream {
	if r == nil {
		return nil
	}
	if err != nil {
		r.stop()
		return nil
	}
	go r.run()
	return r
}

// SocketID is the subscribing socket (hub.Subscriber).
func (r *stream) SocketID() string { return r.s.id }

// Send takes a frame of the channel that is not a stored event: a client
// event, a member event (hub.Subscriber).
func (r *stream) Send(frame []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped:
		return false
	case !r.live:
		return r.hold(heldItem{frame: frame}, len(frame))
	}
	return r.s.conn.Send(frame)
}

// Deliver takes a stored event of the channel (hub.EventSubscriber).
func (r *stream) Deliver(ev *hub.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopped:
		return
	case !r.live:
		r.hold(heldItem{ev: ev}, len(ev.Data)+len(ev.Name))
		return
	}
	if ev.Seq <= r.last.Seq && !replay.Restarted(r.last, &ev.Event) {
		return // sent already, from history
	}
	r.last = ev.Position(r.epoch)
	if r.excluded(ev.Exclude) {
		return
	}
	r.s.conn.Send(r.frameOf(ev))
}

// hold keeps an item until the switch to live, within the send queue's
// bound (replay.Hold). r.mu is held.
func (r *stream) hold(it heldItem, n int) bool {
	if !r.held.Add(it, n, r.s.conn.QueueLimit()) {
		r.s.conn.CloseSlow()
		r.stopLocked()
		return false
	}
	return true
}

func (r *stream) excluded(socketID string) bool {
	if socketID == "" {
		return false
	}
	for _, id := range r.exclude {
		if id == socketID {
			return true
		}
	}
	return false
}

// replayFrame is the frame of a replayed event. With a position it is
// encoded once for all the resumes that shared the event's read
// (replay.Event.SharedFrame). Only run calls it.
func (r *stream) replayFrame(ev *replay.Event) []byte {
	if !r.posOK {
		return hub.EventFrame(r.channel, ev, r.epoch, false)
	}
	return ev.SharedFrame(r.epoch, r.encode)
}

func (r *stream) encodePositioned(ev *replay.Event) []byte {
	return hub.EventFrame(r.channel, ev, r.epoch, true)
}

func (r *stream) frameOf(ev *hub.Event) []byte {
	if r.posOK {
		return ev.PositionFrame(r.epoch)
	}
	return ev.Frame()
}

// stop ends the subscription: nothing more is sent for it. The session's
// goroutine calls it when the channel is left.
func (r *stream) stop() {
	r.mu.Lock()
	r.stopLocked()
	r.mu.Unlock()
}

func (r *stream) stopLocked() {
	r.stopped = true
	r.held.Drop()
	r.stopOnce.Do(func() {
		close(r.done)
		r.cancel()
	})
}

// send queues a frame unless the subscription was stopped.
func (r *stream) send(frame []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.stopped && r.s.conn.Send(frame)
}

// sendPaced waits for room in the send queue (half of it, leaving the rest
// to live traffic), then sends.
func (r *stream) sendPaced(frame []byte) bool {
	if !r.s.conn.WaitRoom(len(frame), r.s.conn.QueueLimit()/2, r.done) {
		return false
	}
	return r.send(frame)
}

// run reads history and sends what the subscription starts with, then
// switches to live (see the top of this file).
func (r *stream) run() {
	eng, app, ch, log := r.s.replay.Engine, r.s.app.ID, r.channel, r.s.logger()
	var (
		start     position.Position
		known     bool // start was read
		history   []replay.Event
		failed    replay.Reason
		replaying = r.resume != "" || r.rewind != nil
		cached    *replay.Event
		cachedPos bool // cached is in the events stream: it has a position
	)
	var h replay.History
	if replaying {
		if !r.holdHistory() {
			return
		}
		defer r.releaseHistory()
		var err error
		if r.resume != "" {
			h, err = eng.Resume(r.ctx, app, ch, r.resume)
		} else {
			h, err = eng.Rewind(r.ctx, app, ch, *r.rewind)
		}
		if r.ctx.Err() != nil {
			return
		}
		if err == nil {
			start, known, history = h.Start, true, h.Events
		} else {
			var ok bool
			if failed, ok = replay.ReasonOf(err); !ok {
				log.Warn("resume failed", "channel", ch, "err", err)
			}
		}
	}
	if !known {
		p, ev, found, err := eng.Last(r.ctx, app, ch)
		if r.ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("channel position unknown", "channel", ch, "err", err)
		} else {
			start, known = p, true
			if found && r.cache {
				cached, cachedPos = &ev, true
			}
		}
	}
	if r.cache && cached == nil {
		ev, found, err := eng.Cached(r.ctx, app, ch)
		switch {
		case r.ctx.Err() != nil:
			return
		case err != nil:
			log.Debug("cached event unreadable", "channel", ch, "err", err)
		case found:
			cached = &ev
			// Stored after the position was read: it is the newest event,
			// and live starts after it.
			if known && ev.Seq > start.Seq {
				start, cachedPos = ev.Position(start.Epoch), true
			}
		}
	}

	m := replay.NewMerger(start, r.exclude...)
	out := m.Add(make([]replay.Event, 0, len(history)), history...)
	r.mu.Lock()
	r.epoch, r.posOK = start.Epoch, known && r.positioned
	r.mu.Unlock()

	if !r.send(protocol.EventFrame(protocol.EventSubscriptionSucceeded, ch, string(r.succeededData(start)), nil)) {
		return
	}
	if r.cache {
		frame := cacheMiss(ch)
		if cached != nil {
			frame = hub.EventFrame(ch, cached, r.epoch, r.posOK && cachedPos)
		} else {
			if r.s.replay.Metrics != nil {
				r.s.replay.Metrics.CacheMisses.Inc()
			}
			r.s.webhook(webhooks.Event{Name: webhooks.CacheMiss, Channel: ch})
		}
		if !r.send(frame) {
			return
		}
	}
	for i := range out {
		if !r.sendPaced(r.replayFrame(&out[i])) {
			return
		}
	}
	replayed := len(out)
	clear(out)
	for h.More() {
		// Let the connection's other channels take their turn between pages.
		r.releaseHistory()
		if !r.holdHistory() {
			return
		}
		evs, err := h.Next(r.ctx)
		if r.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ok bool
			if failed, ok = replay.ReasonOf(err); !ok {
				log.Warn("resume failed", "channel", ch, "err", err)
			}
			break
		}
		out = m.Add(out[:0], evs...)
		for i := range out {
			if !r.sendPaced(r.replayFrame(&out[i])) {
				return
			}
		}
		replayed += len(out)
		clear(out)
	}
	r.releaseHistory()
	if replaying {
		outcome := string(failed)
		frame := resumeFailed(ch, failed)
		if failed == "" {
			outcome, frame = "resumed", resumed(ch, replayed, m.Last())
		}
		if met := r.s.replay.Metrics; met != nil {
			met.Resumes.WithLabelValues(outcome).Inc()
			met.Replayed.Add(float64(replayed))
		}
		if r.s.trace.Debug {
			log.Debug("replayed", "channel", ch, "outcome", outcome, "events", replayed)
		}
		if !r.send(frame) {
			return
		}
	}
	r.switchToLive(m)
}

// holdHistory waits for the connection's history slot (Session.history); it
// reports false when the subscription was stopped first.
func (r *stream) holdHistory() bool {
	select {
	case r.s.history <- struct{}{}:
		r.holding = true
		return true
	case <-r.done:
		return false
	}
}

// releaseHistory gives the slot back if this subscription holds it.
func (r *stream) releaseHistory() {
	if r.holding {
		r.holding = false
		<-r.s.history
	}
}

// switchToLive sends what the hub delivered during the replay, through the
// merger, until nothing waits, and then lets Deliver send directly.
func (r *stream) switchToLive(m *replay.Merger) {
	var out []replay.Event
	for {
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return
		}
		if r.held.Len() == 0 {
			r.live, r.last = true, m.Last()
			r.mu.Unlock()
			return
		}
		batch := r.held.Take()
		r.mu.Unlock()

		for _, it := range batch {
			if it.ev == nil {
				if !r.sendPaced(it.frame) {
					return
				}
				continue
			}
			m.Restart(&it.ev.Event)
			out = m.Add(out[:0], it.ev.Event)
			if _, _, gap := m.Gap(); gap {
				var err error
				out, err = r.s.replay.Engine.Repair(r.ctx, r.s.app.ID, r.channel, m, out, false, 1)
				if r.ctx.Err() != nil {
					return
				}
				if err != nil {
					r.s.logger().Warn("filling a hole before live", "channel", r.channel, "err", err)
				}
			}
			for i := range out {
				frame := r.frameOf(it.ev) // shared with other subscribers
				if out[i].Seq != it.ev.Seq {
					frame = hub.EventFrame(r.channel, &out[i], r.epoch, r.posOK)
				}
				if !r.sendPaced(frame) {
					return
				}
			}
		}
	}
}

// succeededData is the data of subscription_succeeded: the channel's (the
// members of a presence channel, or {}) with "position" added when asked.
func (r *stream) succeededData(start position.Position) []byte {
	data := r.data
	if len(data) == 0 {
		data = emptyObject
	}
	if !r.posOK {
		return data
	}
	member := hub.PositionMember(start)
	out := make([]byte, 0, len(data)+len(member)+1)
	out = append(out, data[:len(data)-1]...) // without the closing brace
	if len(data) > 2 {
		out = append(out, ',')
	}
	out = append(out, member...)
	return append(out, '}')
}

func resumed(ch string, n int, last position.Position) []byte {
	data := `{"replayed":` + strconv.Itoa(n) + `,"position":"` + last.String() + `"}`
	return protocol.EventFrame(protocol.EventHeraldResumed, ch, data, nil)
}

func resumeFailed(ch string, reason replay.Reason) []byte {
	data, _ := json.Marshal(struct {
		Reason replay.Reason `json:"reason"`
	}{reason})
	return protocol.EventFrame(protocol.EventHeraldResumeFailed, ch, string(data), nil)
}

// cacheMiss is pusher:cache_miss, which has no data.
func cacheMiss(ch string) []byte {
	name, _ := json.Marshal(ch)
	b := make([]byte, 0, len(name)+40)
	b = append(b, `{"event":"pusher:cache_miss","channel":`...)
	b = append(b, name...)
	return append(b, '}')
}
