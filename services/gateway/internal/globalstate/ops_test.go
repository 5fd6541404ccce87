package globalstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/herald-ws/herald/shared/poll"
)

// holdPublishes makes c's operations queue as behind a publish in flight;
// the returned function sends what queued, in one message.
func holdPublishes(c *Client) (release func()) {
	c.pubMu.Lock()
	c.inflight++
	c.pubMu.Unlock()
	return func() {
		c.pubMu.Lock()
		defer c.pubMu.Unlock()
		c.inflight--
		_ = c.sendQueuedLocked()
	}
}

func queuedOps(c *Client) int {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	return len(c.queued)
}

func TestABurstOfOperationsGoesInOneMessage(t *testing.T) {
	s, a, _, _ := twoGateways(t)
	stored(a)
	before := a.batches.Load()
	release := holdPublishes(a)

	// 300 own channels, a third of them left again, and a channel joined
	// and left twice: all queued behind the publish in flight.
	const n = 300
	for i := range n {
		join(t, a, fmt.Sprintf("private-own-%d", i), fmt.Sprintf("1.%d", i), "")
	}
	for i := 0; i < n; i += 3 {
		a.Leave(testApp, fmt.Sprintf("private-own-%d", i), fmt.Sprintf("1.%d", i))
	}
	for range 2 {
		join(t, a, "flash", "2.1", "")
		a.Leave(testApp, "flash", "2.1")
	}
	// Four users join a presence channel of at most three members: the
	// joins wait for their message's acknowledgement, then for the list.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			sock := &socket{}
			_, errs[i] = a.Join(context.Background(), sock.request(testApp, testRoom, fmt.Sprintf("3.%d", i), fmt.Sprintf("u%d", i)))
		})
	}
	want := n + n/3 + 4 + 4
	poll.Until(t, poll.Patience, "every operation queued", func() bool { return queuedOps(a) == want })
	release()
	wg.Wait()
	stored(a)

	// The burst, then the leave that undoes the refused join.
	if got := a.batches.Load() - before; got != 2 {
		t.Fatalf("%d operations and a leave went in %d messages, want 2", want, got)
	}
	limited := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrLimit):
			limited++
		case err != nil:
			t.Fatalf("presence join: %v", err)
		}
	}
	if limited != 1 {
		t.Fatalf("%d joins refused for the limit, want 1 (%v)", limited, errs)
	}

	// The presence service's state is exact.
	r := reader(t, s)
	ctx := context.Background()
	poll.Until(t, poll.Patience, "the state of every channel persisted", func() bool {
		chans, err := r.Channels(ctx, testApp, "private-own-")
		if err != nil || len(chans) != n-n/3 {
			return false
		}
		for _, c := range chans {
			if c.SubscriptionCount != 1 {
				return false
			}
		}
		room, err := r.Channel(ctx, testApp, testRoom)
		if err != nil || room.UserCount != 3 {
			return false
		}
		flash, err := r.Channel(ctx, testApp, "flash")
		return err == nil && !flash.Occupied
	})
	chans, _ := r.Channels(ctx, testApp, "private-own-")
	for _, c := range chans {
		var i int
		if _, err := fmt.Sscanf(c.Name, "private-own-%d", &i); err != nil || i%3 == 0 {
			t.Fatalf("channel %s occupied", c.Name)
		}
	}
	users, _ := r.Users(ctx, testApp, testRoom)
	if len(users) != 3 || !slices.IsSorted(users) {
		t.Fatalf("members %v", users)
	}
}

func TestALoneOperationGoesAtOnce(t *testing.T) {
	_, a, _, _ := twoGateways(t)
	stored(a)
	before := a.batches.Load()
	for i := range 3 {
		join(t, a, "news", fmt.Sprintf("1.%d", i), "")
		stored(a) // nothing in flight: the next one goes on its own
	}
	if got := a.batches.Load() - before; got != 3 {
		t.Fatalf("3 operations, one at a time, went in %d messages", got)
	}
}
