// Package publish stores channel events in their app's JetStream events
// stream and reports success only once every message is acknowledged.
//
// A publish that finds NATS reconnecting, or the stream between leaders (a
// node lost, a leader stepping down), is tried again until it is stored or
// the retry budget (Options.RetryFor) is spent. Every message carries a
// message id, so a second try of an event whose first try was stored but
// not acknowledged is recognised by the stream's duplicate window and
// stored once.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/backoff"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// DefaultRetryFor is how long a publish keeps trying through an outage
// when Options.RetryFor is zero: longer than a JetStream leader election
// (when a leader is lost without stepping down, its followers wait 4 to 9 s
// before they vote) followed by the client's reconnect to another node,
// which together passed 12 s on a loaded 3-node cluster, and under the 30 s
// HTTP timeout of the Pusher PHP SDK that Laravel's broadcaster uses.
const DefaultRetryFor = 25 * time.Second

// AttemptTimeout bounds the wait for the acknowledgements of one try. An
// ack that does not come in time (a node lost with it) makes the event
// unknown, and it is sent again under the same message id.
const AttemptTimeout = 2 * time.Second

// maxPending bounds async publishes in flight over the connection; beyond
// it a publish waits briefly, then fails with ErrTooManyStalledMsgs (and is
// tried again).
const maxPending = 16384

// retryBackoff is the wait between tries.
var retryBackoff = backoff.Doubling{First: 25 * time.Millisecond, Max: 400 * time.Millisecond}

// ErrNotConnected is returned when the NATS connection stayed down for the
// whole retry budget: nothing is left in the reconnect buffer to be stored
// behind the caller's back.
var ErrNotConnected = errors.New("publish: NATS is not connected")

// Options tune a Publisher.
type Options struct {
	// RetryFor bounds how long one Publish keeps trying through an
	// outage; 0 is DefaultRetryFor, negative means one try. A try waits
	// AttemptTimeout for its acks at most, so a Publish lasts at most the
	// larger of the two.
	RetryFor time.Duration
	// Retried, when set, is called once for every try after the first.
	Retried func()
}

// Publisher publishes events of any configured app.
type Publisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	opt      events.StreamOptions
	log      *slog.Logger
	retryFor time.Duration
	retried  func()

	// ids: every event gets idPrefix + a counter as its message id unless
	// the caller gave one.
	idPrefix string
	idSeq    atomic.Uint64

	mu      sync.Mutex
	ensured map[string]time.Time // app id → last re-ensure after "no stream"

	// Fast batches (batch.go): one batcher per app whose events stream
	// takes them.
	acks     *acker
	bmu      sync.Mutex
	batchers map[string]*batcher
}

// New builds a Publisher on nc, which the caller keeps owning.
func New(nc *nats.Conn, opt events.StreamOptions, log *slog.Logger, po Options) (*Publisher, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(AttemptTimeout),
		jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	p := &Publisher{nc: nc, js: js, opt: opt, log: log, retryFor: po.RetryFor, retried: po.Retried,
		idPrefix: nuid.Next() + ".", ensured: map[string]time.Time{}, batchers: map[string]*batcher{}}
	if p.acks, err = newAcker(nc, nuid.Next()); err != nil {
		return nil, fmt.Errorf("subscribing to batch acknowledgements: %w", err)
	}
	if p.retryFor == 0 {
		p.retryFor = DefaultRetryFor
	}
	if p.retried == nil {
		p.retried = func() {}
	}
	return p, nil
}

// JetStream returns the JetStream context the publisher uses.
func (p *Publisher) JetStream() jetstream.JetStream { return p.js }

// Ensure creates or updates app's events stream and cache stream.
func (p *Publisher) Ensure(ctx context.Context, app *appconf.App) error {
	s, err := events.EnsureStream(ctx, p.js, app, p.opt)
	if err != nil {
		return err
	}
	p.bmu.Lock()
	if !s.CachedInfo().Config.AllowBatchPublish {
		// A NATS server before 2.14 keeps the stream without it.
		delete(p.batchers, app.ID)
	} else if p.batchers[app.ID] == nil {
		p.batchers[app.ID] = &batcher{acks: p.acks, nc: p.nc}
	}
	p.bmu.Unlock()
	_, err = events.EnsureCacheStream(ctx, p.js, app, p.opt)
	return err
}

// MsgID returns a message id no other event of this process has: a
// random prefix per Publisher and a counter.
func (p *Publisher) MsgID() string {
	var n [13]byte // the longest uint64 in base 36
	var b strings.Builder
	b.Grow(len(p.idPrefix) + len(n))
	b.WriteString(p.idPrefix)
	b.Write(strconv.AppendUint(n[:0], p.idSeq.Add(1), 36))
	return b.String()
}

// Publish stores every event and returns nil once all are acknowledged, the
// cache stream's copies of cache channels' events included (cache.go).
// Events without a message id get one first. Through an outage it tries
// again, the events not yet acknowledged only, until ctx ends or the retry
// budget is spent; then it returns the last error, for which Unavailable
// holds. An error JetStream gives for the event itself (too large, …) is
// returned at once.
//
// The events of one channel are stored in the order of evs, retries
// included: they go in waves (waves), the k-th event of each channel in
// wave k, and a wave is sent only once the one before it is stored. Events
// of different channels go together, so a request whose channels are all
// distinct, as most are, is one wave.
func (p *Publisher) Publish(ctx context.Context, app *appconf.App, evs []events.Event) error {
	for i := range evs {
		if evs[i].MsgID == "" {
			evs[i].MsgID = p.MsgID()
		}
	}
	// A deadline rather than a context with a timeout: no timer for the
	// request that succeeds at once, as nearly all do.
	deadline := time.Now().Add(max(p.retryFor, 0))
	ws := waves(evs)
	if ws == nil {
		return p.publishWave(ctx, deadline, app, evs)
	}
	for _, w := range ws {
		if err := p.publishWave(ctx, deadline, app, w); err != nil {
			return err
		}
	}
	return nil
}

// waves splits evs so that wave k holds the k-th event of each channel, in
// the order of evs. It returns nil when no channel has two events: evs is
// then its only wave.
func waves(evs []events.Event) [][]events.Event {
	if !repeatsChannel(evs) {
		return nil
	}
	nth := make(map[string]int, len(evs))
	var ws [][]events.Event
	for _, ev := range evs {
		k := nth[ev.Channel]
		nth[ev.Channel] = k + 1
		if k == len(ws) {
			ws = append(ws, nil)
		}
		ws[k] = append(ws[k], ev)
	}
	return ws
}

// repeatsChannel reports whether two of evs go to one channel. Requests are
// mostly small: those are compared pairwise, without a map.
func repeatsChannel(evs []events.Event) bool {
	if len(evs) > 16 {
		seen := make(map[string]struct{}, len(evs))
		for _, ev := range evs {
			if _, ok := seen[ev.Channel]; ok {
				return true
			}
			seen[ev.Channel] = struct{}{}
		}
		return false
	}
	for i := range evs {
		for _, prev := range evs[:i] {
			if prev.Channel == evs[i].Channel {
				return true
			}
		}
	}
	return false
}

// publishWave stores evs, events of distinct channels, and their cache
// copies, retrying until the deadline. The events of other channels than
// cache channels go in a fast batch first when the stream takes them; the
// ones it does not cover, and the cache channels' events, whose copies
// need their own stream sequence, take the per-event path.
func (p *Publisher) publishWave(ctx context.Context, deadline time.Time, app *appconf.App, evs []events.Event) error {
	if evs = p.storeBatched(app, evs); len(evs) == 0 {
		return nil
	}
	acks := make([]*jetstream.PubAck, len(evs))
	// retriedAck marks events acknowledged on a later try: a duplicate
	// ack there is the first try's store, whose cache copy is not written.
	var retriedAck []bool
	msg := func(i int) *nats.Msg { return evs[i].Msg() }
	err := p.untilStored(ctx, deadline, app, len(evs), msg, acks, func(i int) {
		if retriedAck == nil {
			retriedAck = make([]bool, len(evs))
		}
		retriedAck[i] = true
	}, names.EventsStream(app.ID))
	if err != nil {
		return err
	}
	return p.storeCache(ctx, deadline, app, evs, acks, retriedAck)
}

// storeBatched stores the events of evs that are not of cache channels in
// a fast batch, when app's stream takes them, and returns the events left
// to store.
func (p *Publisher) storeBatched(app *appconf.App, evs []events.Event) []events.Event {
	p.bmu.Lock()
	b := p.batchers[app.ID]
	p.bmu.Unlock()
	if b == nil {
		return evs
	}
	var msgs []*nats.Msg
	var rest []events.Event
	for _, ev := range evs {
		if protocol.IsCache(ev.Channel) {
			rest = append(rest, ev)
		} else {
			msgs = append(msgs, ev.Msg())
		}
	}
	if len(msgs) == 0 || b.store(msgs) {
		return rest
	}
	// Not known to be stored: again, one by one, under the same ids.
	p.retried()
	p.log.Debug("batch not acknowledged, storing its events one by one", "app_id", app.ID, "events", len(msgs))
	return evs
}

// untilStored publishes msg(i) for i < n, and again for those that failed
// for want of NATS or of a stream leader, until each has an ack in acks or
// the deadline passes. onRetryAck(i) is called for an ack that came on a
// later try.
func (p *Publisher) untilStored(ctx context.Context, deadline time.Time, app *appconf.App, n int, msg func(int) *nats.Msg,
	acks []*jetstream.PubAck, onRetryAck func(int), stream string) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.retried()
		}
		err := p.try(ctx, deadline, n, msg, acks, attempt > 0, onRetryAck)
		if err == nil {
			return nil
		}
		if !Unavailable(err) || ctx.Err() != nil || !time.Now().Before(deadline) {
			return err
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			// No stream answered: a leader election, or a stream deleted
			// under the running service, which is created again.
			if eerr := p.reensureIfGone(ctx, deadline, app, stream); eerr != nil {
				p.log.Warn("events stream missing, ensuring it again failed", "app_id", app.ID, "err", eerr)
			}
		}
		p.log.Debug("storing events failed, trying again", "app_id", app.ID, "attempt", attempt+1, "err", err)
		if !backoff.Sleep(ctx, min(retryBackoff.Wait(attempt), time.Until(deadline))) {
			return err
		}
	}
}

// try sends every message without an ack yet and waits for their acks
// together, up to AttemptTimeout (on a retry, only up to the deadline). It
// returns the first error; Unavailable says whether another try may
// succeed.
func (p *Publisher) try(ctx context.Context, deadline time.Time, n int, msg func(int) *nats.Msg, acks []*jetstream.PubAck,
	retry bool, onRetryAck func(int)) error {
	if !p.nc.IsConnected() {
		if !p.waitConnected(ctx, deadline) {
			return ErrNotConnected
		}
	}
	futures := make([]jetstream.PubAckFuture, n)
	var firstErr error
	for i := range n {
		if acks[i] != nil {
			continue
		}
		f, err := p.js.PublishMsgAsync(msg(i))
		if err != nil {
			firstErr = fmt.Errorf("publishing: %w", err)
			break
		}
		futures[i] = f
	}
	// The first try gets its whole AttemptTimeout, whatever the budget:
	// with no retry (a negative RetryFor) it is the only one.
	wait := AttemptTimeout
	if retry {
		wait = max(min(wait, time.Until(deadline)), 0)
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			acks[i] = ack
			if retry {
				onRetryAck(i)
			}
		case err := <-f.Err():
			if firstErr == nil || (Unavailable(firstErr) && !Unavailable(err)) {
				firstErr = fmt.Errorf("storing on %s: %w", f.Msg().Subject, err)
			}
		case <-timeout.C:
			if firstErr == nil {
				firstErr = fmt.Errorf("waiting for acknowledgements: %w", nats.ErrTimeout)
			}
			return firstErr
		case <-ctx.Done():
			if firstErr == nil {
				firstErr = fmt.Errorf("waiting for acknowledgements: %w", ctx.Err())
			}
			return firstErr
		}
	}
	return firstErr
}

// waitConnected waits until the connection is up again, ctx ends or the
// deadline passes.
func (p *Publisher) waitConnected(ctx context.Context, deadline time.Time) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !p.nc.IsConnected() {
		if p.nc.IsClosed() || !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// reensureIfGone creates the app's streams again when stream no longer
// exists, unless another request just did. A stream that exists but did
// not answer is electing a leader: waiting is all there is to do.
func (p *Publisher) reensureIfGone(ctx context.Context, deadline time.Time, app *appconf.App, stream string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.ensured[app.ID]) < time.Second {
		return nil
	}
	p.ensured[app.ID] = time.Now()
	actx, cancel := context.WithTimeout(ctx, min(AttemptTimeout, time.Until(deadline)))
	defer cancel()
	if _, err := p.js.Stream(actx, stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	p.log.Warn("stream missing, ensuring it again", "app_id", app.ID, "stream", stream)
	return p.Ensure(actx, app)
}

// Unavailable reports an error that says NATS or the stream could not be
// reached in time, rather than a refusal by JetStream: the request may be
// retried.
func Unavailable(err error) bool {
	for _, e := range []error{
		ErrNotConnected, nats.ErrDisconnected, nats.ErrConnectionClosed, nats.ErrConnectionReconnecting,
		nats.ErrNoResponders, nats.ErrTimeout, jetstream.ErrNoStreamResponse, jetstream.ErrAsyncPublishTimeout,
		jetstream.ErrTooManyStalledMsgs, context.DeadlineExceeded, context.Canceled,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	// JetStream answering "temporarily unavailable" (503) while it
	// elects a leader.
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable
}
