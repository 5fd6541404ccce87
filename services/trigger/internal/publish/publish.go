// Package publish stores channel events in their app's JetStream events
// stream and reports success only once every message is acknowledged.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AckTimeout bounds the wait for one PubAck. Past it the message counts as
// failed, and its pending entry is freed so lost acks cannot pile up.
const AckTimeout = 5 * time.Second

// maxPending bounds async publishes in flight over the connection; beyond
// it a publish waits briefly, then fails with ErrTooManyStalledMsgs.
const maxPending = 16384

// ErrNotConnected is returned when the NATS connection is down: nothing is
// sent, so nothing sits in the reconnect buffer to be stored behind the
// caller's back.
var ErrNotConnected = errors.New("publish: NATS is not connected")

// Publisher publishes events of any configured app.
type Publisher struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	opt events.StreamOptions
	log *slog.Logger

	mu      sync.Mutex
	ensured map[string]time.Time // app id → last re-ensure after "no stream"
}

// New builds a Publisher on nc, which the caller keeps owning.
func New(nc *nats.Conn, opt events.StreamOptions, log *slog.Logger) (*Publisher, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(AckTimeout),
		jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		return nil, fmt.Errorf("opening JetStream: %w", err)
	}
	return &Publisher{nc: nc, js: js, opt: opt, log: log, ensured: map[string]time.Time{}}, nil
}

// JetStream returns the JetStream context the publisher uses.
func (p *Publisher) JetStream() jetstream.JetStream { return p.js }

// Ensure creates or updates app's events stream and cache stream.
func (p *Publisher) Ensure(ctx context.Context, app *appconf.App) error {
	if _, err := events.EnsureStream(ctx, p.js, app, p.opt); err != nil {
		return err
	}
	_, err := events.EnsureCacheStream(ctx, p.js, app, p.opt)
	return err
}

// Publish stores every event and returns nil once all are acknowledged, the
// cache stream's copies of cache channels' events included (cache.go). When
// the app's stream is gone (deleted under a running service), it is created
// again and the events that found no stream are published once more.
func (p *Publisher) Publish(ctx context.Context, app *appconf.App, evs []events.Event) error {
	if !p.nc.IsConnected() {
		return ErrNotConnected
	}
	failed, acks, err := p.publish(ctx, evs)
	if err == nil {
		return p.storeCache(ctx, app, evs, acks)
	}
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		return err
	}
	p.log.Warn("events stream missing, ensuring it again", "app_id", app.ID, "err", err)
	if eerr := p.reensure(ctx, app); eerr != nil {
		return fmt.Errorf("%w (ensuring the stream again: %v)", err, eerr)
	}
	retry := make([]events.Event, len(failed))
	for i, n := range failed {
		retry[i] = evs[n]
	}
	_, racks, err := p.publish(ctx, retry)
	if err != nil {
		return err
	}
	for i, n := range failed {
		acks[n] = racks[i]
	}
	return p.storeCache(ctx, app, evs, acks)
}

// reensure calls EnsureStream for app unless another request just did.
func (p *Publisher) reensure(ctx context.Context, app *appconf.App) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.ensured[app.ID]) < time.Second {
		return nil
	}
	if err := p.Ensure(ctx, app); err != nil {
		return err
	}
	p.ensured[app.ID] = time.Now()
	return nil
}

// publish sends evs asynchronously and waits for every ack, which it returns
// by index. When some failed for lack of a stream and nothing else went
// wrong, it returns their indexes with ErrNoStreamResponse; otherwise the
// first error.
func (p *Publisher) publish(ctx context.Context, evs []events.Event) ([]int, []*jetstream.PubAck, error) {
	futures := make([]jetstream.PubAckFuture, len(evs))
	acks := make([]*jetstream.PubAck, len(evs))
	var firstErr error
	for i, ev := range evs {
		f, err := p.js.PublishMsgAsync(ev.Msg())
		if err != nil {
			firstErr = fmt.Errorf("publishing to %s: %w", ev.Channel, err)
			break
		}
		futures[i] = f
	}
	var noStream []int
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			acks[i] = ack
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				noStream = append(noStream, i)
				continue
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("storing event on %s: %w", evs[i].Channel, err)
			}
		case <-ctx.Done():
			if firstErr == nil {
				firstErr = fmt.Errorf("waiting for acknowledgements: %w", ctx.Err())
			}
			return nil, nil, firstErr
		}
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if len(noStream) > 0 {
		return noStream, acks, fmt.Errorf("storing %d events: %w", len(noStream), jetstream.ErrNoStreamResponse)
	}
	return nil, acks, nil
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
	return false
}
