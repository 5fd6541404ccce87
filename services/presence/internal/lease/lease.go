// Package lease elects the active presence instance: whoever creates the
// lock key holds it, renews it with a revision-checked write before its TTL
// runs out, and loses it when a renewal finds another revision.
//
// The lease alone does not keep a deposed holder from writing (its clock or
// its connection may lag); the state bucket's fenced writes do. The lease
// decides who should be writing, and gives the others a way to wait.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrLost means another instance holds the lock, or it expired.
var ErrLost = errors.New("lease: lost")

// Lease is a held lock.
type Lease struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	key     string
	subject string
	value   []byte
	ttl     time.Duration

	mu      sync.Mutex
	rev     uint64
	renewed time.Time
}

// Acquire blocks until it creates key in kv with value and a TTL, polling
// every poll, or until ctx ends.
func Acquire(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, key string, value any, ttl, poll time.Duration) (*Lease, error) {
	b, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("lease: encoding value: %w", err)
	}
	for {
		start := time.Now()
		rev, err := kv.Create(ctx, key, b, jetstream.KeyTTL(ttl))
		if err == nil {
			return &Lease{js: js, kv: kv, key: key, subject: "$KV." + kv.Bucket() + "." + key, value: b, ttl: ttl,
				rev: rev, renewed: start}, nil
		}
		// ErrKeyExists: another instance is active. Anything else: NATS is
		// unreachable or slow. Either way, keep trying as a standby.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Keep renews the lease every TTL/3 until ctx ends (nil) or the lease is
// lost (ErrLost). A renewal that cannot reach NATS is retried until the
// lease is no longer Valid.
func (l *Lease) Keep(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := l.renew(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrLost):
			return err
		case !l.Valid():
			return fmt.Errorf("%w: not renewed in time: %v", ErrLost, err)
		}
	}
}

func (l *Lease) renew(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	m := nats.NewMsg(l.subject)
	m.Data = l.value
	ack, err := l.js.PublishMsg(rctx, m, jetstream.WithMsgTTL(l.ttl), jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return fmt.Errorf("%w: key %s changed", ErrLost, l.key)
		}
		return fmt.Errorf("lease: renewing %s: %w", l.key, err)
	}
	l.mu.Lock()
	l.rev, l.renewed = ack.Sequence, start
	l.mu.Unlock()
	return nil
}

// Valid reports whether the lease was renewed recently enough that no other
// instance can have taken it: within two thirds of the TTL, leaving a margin
// for clock rates and delivery.
func (l *Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.renewed) < l.ttl*2/3
}

// Release deletes the lock if it is still this lease's, so that a standby
// takes over at once.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		return fmt.Errorf("lease: releasing %s: %w", l.key, err)
	}
	return nil
}
