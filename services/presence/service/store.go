package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// store writes the state bucket as its only writer. Every write expects the
// stream's last sequence to be the one this store wrote before it
// (Nats-Expected-Last-Sequence), so writes are pipelined yet refused as soon
// as anyone else has written: a new term starts by writing the meta key,
// and from then on every write of an older term fails. That is the fence.
type store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	prefix string
	last   uint64
	// markerTTL is how long a removed key's purge marker stays.
	markerTTL time.Duration
}

// errFenced means another instance wrote the state bucket.
var errFenced = errors.New("state bucket written by another instance")

// writeBatch bounds the writes in flight, below the client's limit on
// pending asynchronous publishes.
const writeBatch = 1000

func newStore(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) (*store, error) {
	s, err := js.Stream(ctx, "KV_"+names.PresenceStateBucket)
	if err != nil {
		return nil, fmt.Errorf("opening the state stream: %w", err)
	}
	return &store{js: js, kv: kv, stream: s, prefix: "$KV." + names.PresenceStateBucket + ".", markerTTL: presence.MarkerTTL}, nil
}

// fence writes meta after whatever the bucket holds now, and makes this
// store the only one whose writes can succeed.
func (s *store) fence(ctx context.Context, meta presence.Meta) error {
	b, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encoding meta: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		info, err := s.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("reading the state stream: %w", err)
		}
		s.last = info.State.LastSeq
		// A deposed writer may still be writing: retry on its heels.
		if lastErr = s.write(ctx, []state.Write{{Key: names.PresenceMetaKey, Value: b}}); lastErr == nil {
			return nil
		}
		if !errors.Is(lastErr, errFenced) {
			return lastErr
		}
	}
	return fmt.Errorf("fencing the state bucket: %w", lastErr)
}

// write persists ws in order; it returns only when all are stored, or on
// the first refusal.
func (s *store) write(ctx context.Context, ws []state.Write) error {
	for len(ws) > 0 {
		n := min(len(ws), writeBatch)
		if err := s.writeSome(ctx, ws[:n]); err != nil {
			return err
		}
		ws = ws[n:]
	}
	return nil
}

func (s *store) writeSome(ctx context.Context, ws []state.Write) error {
	futures := make([]jetstream.PubAckFuture, 0, len(ws))
	var sendErr error
	for i, w := range ws {
		m := nats.NewMsg(s.prefix + w.Key)
		if w.Value == nil {
			// The marker expires: a vacated channel or a signed-out user
			// leaves nothing in the bucket for good. Its expiry removes a
			// message and writes none, so the fence's sequence holds.
			m.Header.Set("KV-Operation", "PURGE")
			m.Header.Set("Nats-Rollup", "sub")
			m.Header.Set(names.HeaderNatsTTL, s.markerTTL.String())
		} else {
			m.Data = w.Value
		}
		f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectLastSequence(s.last+uint64(i)))
		if err != nil {
			sendErr = fmt.Errorf("writing %s: %w", w.Key, err)
			break
		}
		futures = append(futures, f)
	}
	var firstErr error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Sequence != s.last+uint64(i)+1 {
				firstErr = firstOf(firstErr, fmt.Errorf("%w: %s stored at %d, expected %d", errFenced, ws[i].Key, ack.Sequence, s.last+uint64(i)+1))
			}
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				err = fmt.Errorf("%w: %v", errFenced, err)
			}
			firstErr = firstOf(firstErr, fmt.Errorf("writing %s: %w", ws[i].Key, err))
		case <-ctx.Done():
			return fmt.Errorf("writing channel state: %w", ctx.Err())
		}
	}
	if firstErr == nil {
		firstErr = sendErr
	}
	if firstErr != nil {
		return firstErr
	}
	s.last += uint64(len(ws))
	return nil
}

func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
