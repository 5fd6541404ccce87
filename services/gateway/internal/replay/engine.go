// Package replay is the gateway's side of Herald's replay extension: the
// channel's current position, the events after a position a client resumes
// from (only when the stream can prove it still holds all of them), the last
// N events for a rewind, and the Merger that joins history with live
// messages so that each event is delivered exactly once.
//
// A subscribe with positions, resume or rewind runs, in this order:
//
//  1. Start receiving the channel's live messages (names.LiveSubject) for
//     this subscription and buffer them. This comes first: every event
//     stored after the history read begins then reaches the buffer.
//  2. Resume (or Rewind) reads the history; a plain subscribe with
//     positions calls CurrentPosition. On a Reason error, CurrentPosition
//     gives the point live delivery starts from.
//  3. NewMerger(start, socketID, socketIDs...) and Merger.Add(history),
//     then herald:resumed with Merger.Last, then the buffered and later
//     live messages (FromLive) through Merger.Add, calling Fill whenever
//     Merger.Gap reports a hole.
//
// Reads use Direct Get (no consumer per client), and every position carries
// the stream's epoch, so a position of a recreated stream is refused rather
// than misread. Resumes of one channel that wait at the same time share one
// read (shared.go).
package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/position"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxRewind is the largest rewind a client may ask for.
const MaxRewind = 100

// Options tune an Engine. Zero values mean the defaults.
type Options struct {
	// Timeout bounds each NATS request whose context has no deadline.
	// Default 5 s: long enough for a loaded cluster, short enough that a
	// subscribe does not hang when NATS is gone.
	Timeout time.Duration
	// Concurrency bounds the history reads of resumes and rewinds running
	// at once (resumes of one channel waiting together share one read). A
	// reconnect storm then queues on the gateway instead of flooding the
	// JetStream API with stream info requests and holding every history in
	// memory at once. Default 16.
	Concurrency int
	// PageBytes bounds the history one read of a resume or rewind brings
	// in (about: a page holds at least one event). Resume and Rewind then
	// return the first page, and History.Next reads the others, so that a
	// caller holds one page at a time whatever the history's size. 0 reads
	// every event at once.
	PageBytes int
	// Reads, when set, counts the history reads of resumes, a shared one
	// once.
	Reads prometheus.Counter
	// RetryAfter is how long Fill waits before reading a hole a second time
	// when the first read did not fill it: with AllowDirect on a cluster a
	// replica may answer a little behind its leader. Default 20 ms.
	RetryAfter time.Duration
}

// Engine reads channel history from the apps' events streams. It is safe
// for concurrent use.
type Engine struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	timeout    time.Duration
	retryAfter time.Duration
	pageBytes  int
	slots      chan struct{}

	mu     sync.Mutex
	epochs map[string]cachedEpoch // by stream name

	lanesMu sync.Mutex
	lanes   map[readKey]*lane  // resumes sharing a read (shared.go)
	reads   atomic.Int64       // history reads of resumes, a shared one once
	readsC  prometheus.Counter // Options.Reads; may be nil
	// afterRead, when set (tests), runs after a shared read, before the
	// resumes waiting on it get it.
	afterRead func()
}

type cachedEpoch struct {
	epoch position.Epoch
	at    time.Time
}

// epochTTL bounds how long CurrentPosition trusts a remembered epoch. A
// stale one is harmless (a later resume from it gets history_lost, never
// wrong events); the bound only limits how long that can go on after a
// stream was recreated.
const epochTTL = 10 * time.Second

// New builds an Engine on a NATS connection.
func New(nc *nats.Conn, opt Options) (*Engine, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("replay: jetstream context: %w", err)
	}
	option.Default(&opt.Timeout, 5*time.Second)
	option.Default(&opt.Concurrency, 16)
	option.Default(&opt.RetryAfter, 20*time.Millisecond)
	return &Engine{
		nc:         nc,
		js:         js,
		timeout:    opt.Timeout,
		retryAfter: opt.RetryAfter,
		pageBytes:  max(opt.PageBytes, 0),
		slots:      make(chan struct{}, opt.Concurrency),
		epochs:     map[string]cachedEpoch{},
		lanes:      map[readKey]*lane{},
		readsC:     opt.Reads,
	}, nil
}

// History is what a resume or rewind delivers.
type History struct {
	// Start is the point delivery starts from: the resume position, or the
	// point just before the first rewound event (the channel's current
	// position when there is none). pusher_internal:subscription_succeeded
	// carries it; a Merger starts there.
	Start position.Position
	// Events are the stored events after Start, oldest first, each with
	// LastSeq set, excluded ones included (the Merger filters them). For a
	// resume they are every event of the channel after Start up to about
	// when the read began; later ones arrive live. With Options.PageBytes
	// they are the first page: Next reads the rest.
	Events []Event

	rest *pager // nil when Events hold everything
}

// CurrentPosition is the channel's position now: the last event stored for
// it or, when the stream holds none, the stream's last sequence (a later
// resume from there then gets every event that follows). Call it after the
// live subscription is in place: every event after the position reaches it.
func (e *Engine) CurrentPosition(ctx context.Context, appID, channel string) (position.Position, error) {
	stream, subject := names.EventsStream(appID), names.EventSubject(appID, channel)
	if epoch, ok := e.cachedEpoch(stream); ok {
		ev, found, err := e.last(ctx, stream, subject)
		if err != nil {
			return position.Position{}, fmt.Errorf("position of %s: %w", channel, err)
		}
		if found {
			return ev.Position(epoch), nil
		}
	}
	// The stream's state first, the channel's last event second: an event
	// stored in between has a sequence above the stream's last one and is
	// found by the second read, so the position never passes an event that
	// live delivery would then drop.
	info, err := e.info(ctx, stream)
	if err != nil {
		return position.Position{}, fmt.Errorf("position of %s: %w", channel, err)
	}
	epoch := position.EpochOf(info.Created)
	ev, found, err := e.last(ctx, stream, subject)
	if err != nil {
		return position.Position{}, fmt.Errorf("position of %s: %w", channel, err)
	}
	if found {
		return ev.Position(epoch), nil
	}
	return position.Position{Epoch: epoch, Seq: info.State.LastSeq, Time: info.State.LastTime}, nil
}

// Mark is where an events stream stands: the epoch and its last sequence.
// Two equal marks read at different times mean nothing was stored between
// them.
type Mark struct {
	Epoch position.Epoch
	Seq   uint64
}

// StreamMark reads the app's events stream's mark.
func (e *Engine) StreamMark(ctx context.Context, appID string) (Mark, error) {
	info, err := e.info(ctx, names.EventsStream(appID))
	if err != nil {
		return Mark{}, err
	}
	return Mark{Epoch: position.EpochOf(info.Created), Seq: info.State.LastSeq}, nil
}

// LastStored is the position of the channel's last stored event, or the
// zero position when the stream holds none of its events. Unlike
// CurrentPosition it is not a point a client may resume from (it has no
// epoch when the channel is empty), but it is where the live path of a
// newly followed channel starts: its first live event then names 0 as its
// predecessor. One read, where CurrentPosition of an empty channel takes
// three.
func (e *Engine) LastStored(ctx context.Context, appID, channel string) (position.Position, error) {
	stream, subject := names.EventsStream(appID), names.EventSubject(appID, channel)
	ev, found, err := e.last(ctx, stream, subject)
	if err != nil || !found {
		return position.Position{}, err
	}
	epoch, ok := e.cachedEpoch(stream)
	if !ok {
		info, err := e.info(ctx, stream)
		if err != nil {
			return position.Position{}, fmt.Errorf("position of %s: %w", channel, err)
		}
		epoch = position.EpochOf(info.Created)
	}
	return ev.Position(epoch), nil
}

// Resume returns every event of the channel after the position from, a
// string a client sent. It fails with a Reason (errors.Is / ReasonOf) when
// the position is malformed or in the future (InvalidPosition), belongs to
// another stream (HistoryLost), or when the stream cannot prove that it
// still holds every event after it (WindowExceeded); then no event is
// returned. Call it after the live subscription is in place.
func (e *Engine) Resume(ctx context.Context, appID, channel, from string) (History, error) {
	p, err := position.Parse(from)
	if err != nil {
		return History{}, fmt.Errorf("resume on %s: %w: %w", channel, InvalidPosition, err)
	}
	// Concurrent resumes of the channel share one read (shared.go).
	k := readKey{stream: names.EventsStream(appID), subject: names.EventSubject(appID, channel), epoch: p.Epoch}
	h, err := e.wait(ctx, e.join(k, p), p)
	for errors.Is(err, errRetry) {
		h, err = e.wait(ctx, e.join(k, p), p)
	}
	if err != nil {
		return History{}, fmt.Errorf("resume on %s from %s: %w", channel, from, err)
	}
	return h, nil
}

// resume reads the first page of the events after p.Seq and proves that
// none is missing. upTo is the stream's last sequence when the read began:
// a later one arrives live.
//
// Every limit of an events stream removes the oldest messages first (MaxAge
// and MaxBytes stream-wide, MaxMsgsPerSubject per channel), so what a
// channel has stored is always an unbroken tail of its events. Nothing
// after S was removed while the channel's oldest stored message is at or
// before S+1; nor when the stream's first sequence is at most S+1 (no
// stream-wide removal past S) and fewer than MaxMsgsPerSubject messages of
// the channel follow S (the cap removed none of them). The check runs after
// the read, since messages may age out while it runs; no clock is involved.
// Each later page is proven the same way from the last event before it.
func (e *Engine) resume(ctx context.Context, stream, subject string, p position.Position) (h History, upTo uint64, err error) {
	info, err := e.info(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return History{}, 0, fmt.Errorf("%w: %w", HistoryLost, err)
	}
	if err != nil {
		return History{}, 0, err
	}
	if position.EpochOf(info.Created) != p.Epoch {
		return History{}, 0, fmt.Errorf("%w: stream %s was created at %s", HistoryLost, stream, info.Created.Format(time.RFC3339Nano))
	}
	s := p.Seq
	if err := pastLast(s, info.State.LastSeq); err != nil {
		return History{}, 0, err
	}
	if info.State.FirstSeq > s+1 {
		// The stream has dropped messages after S: only an event of the
		// channel at or before S+1 can still prove the replay complete.
		// Look before reading a history that would be thrown away.
		ok, err := e.tailReaches(ctx, stream, subject, s)
		if err != nil {
			return History{}, 0, err
		}
		if !ok {
			return History{}, 0, fmt.Errorf("%w: the stream starts at %d, after %d", WindowExceeded, info.State.FirstSeq, s)
		}
	}
	pg := &pager{e: e, stream: stream, subject: subject, last: s, upTo: info.State.LastSeq, left: -1}
	evs, err := pg.read(ctx, true)
	if err != nil {
		return History{}, 0, err
	}
	return History{Start: p, Events: evs, rest: pg.rest()}, info.State.LastSeq, nil
}

// pastLast refuses a resume from sequence s of a stream whose last is last:
// a position in the future.
func pastLast(s, last uint64) error {
	if s > last {
		return fmt.Errorf("%w: sequence %d is past the stream's last, %d", InvalidPosition, s, last)
	}
	return nil
}

// tailReaches reports whether the oldest event the stream holds for the
// channel is at or before s+1: the channel's unbroken tail then holds every
// event after s.
func (e *Engine) tailReaches(ctx context.Context, stream, subject string, s uint64) (bool, error) {
	oldest, _, ok, err := e.probe(ctx, stream, subject, 1)
	if err != nil {
		return false, err
	}
	return ok && oldest.Seq <= s+1, nil
}

// prove checks, after a read, that no event of the channel after s has
// left the stream (see resume).
func (e *Engine) prove(ctx context.Context, stream, subject string, s uint64) error {
	oldest, count, ok, err := e.probe(ctx, stream, subject, 1)
	if err != nil {
		return err
	}
	if ok && oldest.Seq <= s+1 {
		return nil
	}
	// Every stored event of the channel follows s: count of them.
	info, err := e.info(ctx, stream)
	if err != nil {
		return err
	}
	if info.State.FirstSeq > s+1 {
		return fmt.Errorf("%w: the stream starts at %d, after %d", WindowExceeded, info.State.FirstSeq, s)
	}
	if limit := info.Config.MaxMsgsPerSubject; limit > 0 && count >= uint64(limit) {
		return fmt.Errorf("%w: %d events follow %d, the channel's cap is %d", WindowExceeded, count, s, limit)
	}
	return nil
}

// Rewind returns the last n events of the channel (fewer when it holds
// fewer), oldest first, with Start just before the first of them. n outside
// 1 to MaxRewind gives InvalidRewind. Call it after the live subscription
// is in place.
func (e *Engine) Rewind(ctx context.Context, appID, channel string, n int) (History, error) {
	if n < 1 || n > MaxRewind {
		return History{}, fmt.Errorf("rewind on %s: %w: %d is not within 1 to %d", channel, InvalidRewind, n, MaxRewind)
	}
	release, err := e.acquire(ctx)
	if err != nil {
		return History{}, fmt.Errorf("rewind on %s: %w", channel, err)
	}
	defer release()
	h, err := e.rewind(ctx, names.EventsStream(appID), names.EventSubject(appID, channel), uint64(n))
	if err == nil {
		err = h.readAll(ctx)
	}
	if err != nil {
		return History{}, fmt.Errorf("rewind %d on %s: %w", n, channel, err)
	}
	return h, nil
}

func (e *Engine) rewind(ctx context.Context, stream, subject string, n uint64) (History, error) {
	info, err := e.info(ctx, stream)
	if err != nil {
		return History{}, err
	}
	epoch := position.EpochOf(info.Created)
	// The stream's last sequence before the channel's events are looked at:
	// any event stored later follows it and arrives live.
	current := position.Position{Epoch: epoch, Seq: info.State.LastSeq, Time: info.State.LastTime}
	oldest, count, ok, err := e.probe(ctx, stream, subject, 1)
	if err != nil {
		return History{}, err
	}
	if !ok {
		return History{Start: current}, nil
	}
	from := oldest.Seq
	if count > n {
		from, err = e.seekFromEnd(ctx, stream, subject, oldest.Seq, count, n, info.State.LastSeq)
		if err != nil {
			return History{}, err
		}
	}
	pg := &pager{e: e, stream: stream, subject: subject, last: from - 1, upTo: info.State.LastSeq, left: int(n)}
	evs, err := pg.read(ctx, false)
	if err != nil {
		return History{}, err
	}
	// Events may have aged out while they were read, leaving a hole: keep
	// what follows the oldest event still stored, an unbroken tail. Later
	// pages are proven from the last event before them, as a resume's.
	oldest, _, ok, err = e.probe(ctx, stream, subject, 1)
	if err != nil {
		return History{}, err
	}
	for len(evs) > 0 && (!ok || evs[0].Seq < oldest.Seq) {
		evs = evs[1:]
	}
	if len(evs) == 0 {
		return History{Start: current}, nil
	}
	start := position.Position{Epoch: epoch, Seq: evs[0].Seq - 1, Time: evs[0].Time}
	evs[0].LastSeq = start.Seq
	return History{Start: start, Events: evs, rest: pg.rest()}, nil
}

// seekFromEnd finds the sequence of the channel's n-th last event up to
// upTo, given its oldest event at lo and the count of events from there. It
// probes the stream (each probe answers with the number of the channel's
// events at or after a sequence), alternating a guess that assumes the
// events are spread evenly with a bisection that bounds the probes to about
// twice log2 of the range. Events arriving meanwhile may make the result a
// little late: the rewind then holds a few fewer than n events.
func (e *Engine) seekFromEnd(ctx context.Context, stream, subject string, lo, count, n, upTo uint64) (uint64, error) {
	hi := upTo + 1 // fewer than n events at or after hi
	for i := 0; hi-lo > 1 && i < 128; i++ {
		var mid uint64
		if i%2 == 0 {
			frac := float64(count-n) / float64(count)
			mid = lo + uint64(frac*float64(hi-lo))
		} else {
			mid = lo + (hi-lo)/2
		}
		mid = min(max(mid, lo+1), hi-1)
		ev, c, ok, err := e.probe(ctx, stream, subject, mid)
		if err != nil {
			return 0, err
		}
		switch {
		case !ok || ev.Seq > upTo || c < n:
			hi = mid
		case c == n:
			return ev.Seq, nil
		default:
			lo, count = ev.Seq, c
		}
	}
	return lo, nil
}

// Fill reads from the stream what m waits on (Merger.Gap) and feeds it to
// m, until m has no hole left, and returns out with the events delivered. A
// hole that a second read does not fill either (its events left the stream)
// is given up with Merger.Skip. Run it on the goroutine that owns m.
func (e *Engine) Fill(ctx context.Context, appID, channel string, m *Merger, out []Event) ([]Event, error) {
	stream, subject := names.EventsStream(appID), names.EventSubject(appID, channel)
	retried := false
	for {
		after, before, ok := m.Gap()
		if !ok {
			return out, nil
		}
		evs, err := e.readAfter(ctx, stream, subject, after, before-1)
		if err != nil {
			return out, fmt.Errorf("filling %s after %d: %w", channel, after, err)
		}
		out = m.Add(out, evs...)
		if a, b, ok := m.Gap(); !ok || a != after || b != before {
			retried = false
			continue
		}
		if !retried {
			retried = true
			select {
			case <-ctx.Done():
				return out, fmt.Errorf("filling %s after %d: %w", channel, after, ctx.Err())
			case <-time.After(e.retryAfter):
			}
			continue
		}
		retried = false
		out = m.Skip(out)
	}
}

// CatchUp feeds m every stored event after m.Last(), then fills any hole:
// what a gateway runs when live messages may have been lost with nothing
// after them to show it (a NATS reconnect, a slow-consumer signal, a
// periodic check of a busy channel's tail). Run it on the goroutine that
// owns m.
func (e *Engine) CatchUp(ctx context.Context, appID, channel string, m *Merger, out []Event) ([]Event, error) {
	stream, subject := names.EventsStream(appID), names.EventSubject(appID, channel)
	evs, err := e.readAfter(ctx, stream, subject, m.Last().Seq, math.MaxUint64)
	if err != nil {
		return out, fmt.Errorf("catching up %s after %d: %w", channel, m.Last().Seq, err)
	}
	return e.Fill(ctx, appID, channel, m, m.Add(out, evs...))
}

// Repair reads from the stream what m misses, as Fill does, or with catchUp
// as CatchUp does. A read that fails is tried again, up to attempts reads in
// all while ctx lasts; then every hole is given up (Merger.SkipAll) so that
// delivery goes on without what could not be read, and the last error is
// returned. Both the live path and a resume's switch to live repair this way.
func (e *Engine) Repair(ctx context.Context, appID, channel string, m *Merger, out []Event, catchUp bool, attempts int) ([]Event, error) {
	for attempt := 1; ; attempt++ {
		var err error
		if catchUp {
			out, err = e.CatchUp(ctx, appID, channel, m, out)
		} else {
			out, err = e.Fill(ctx, appID, channel, m, out)
		}
		if err == nil {
			return out, nil
		}
		if attempt >= attempts || ctx.Err() != nil {
			return m.SkipAll(out), err
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * repairBackoff):
		}
	}
}

// repairBackoff is the wait before Repair's second read; it grows by as
// much before each further one.
const repairBackoff = 50 * time.Millisecond

// info asks for the stream's state (always fresh: the epoch and the first
// and last sequences decide a resume) and remembers its epoch.
func (e *Engine) info(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := e.withTimeout(ctx)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream info of %s: %w", stream, err)
	}
	info := s.CachedInfo()
	e.mu.Lock()
	e.epochs[stream] = cachedEpoch{epoch: position.EpochOf(info.Created), at: time.Now()}
	e.mu.Unlock()
	return info, nil
}

func (e *Engine) cachedEpoch(stream string) (position.Epoch, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.epochs[stream]
	if !ok || time.Since(c.at) > epochTTL {
		return 0, false
	}
	return c.epoch, true
}

func (e *Engine) acquire(ctx context.Context) (release func(), err error) {
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Engine) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.timeout)
}
