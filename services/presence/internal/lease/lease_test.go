package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

func TestLease(t *testing.T) {
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := ensure.Bucket(ctx, js, presence.LockBucketConfig(presence.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	first, err := Acquire(ctx, js, kv, "leader", "first", time.Second, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan *Lease, 1)
	go func() {
		l, _ := Acquire(ctx, js, kv, "leader", "second", time.Second, 50*time.Millisecond)
		waiting <- l
	}()
	keepCtx, stopKeep := context.WithCancel(ctx)
	kept := make(chan error, 1)
	go func() { kept <- first.Keep(keepCtx) }()
	select {
	case <-waiting:
		t.Fatal("a second holder while the first renews")
	case <-time.After(1500 * time.Millisecond): // over the TTL: renewals kept it
	}
	stopKeep()
	if err := <-kept; err != nil {
		t.Fatalf("Keep: %v", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second := <-waiting
	if second == nil {
		t.Fatal("no lease after the release")
	}
	// The first holder's renewals now find another revision.
	if err := first.Keep(withTimeout(t, 2*time.Second)); !errors.Is(err, ErrLost) {
		t.Fatalf("Keep after losing the lock: %v, want ErrLost", err)
	}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
