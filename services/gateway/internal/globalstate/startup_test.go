package globalstate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/natstest"
)

// A gateway may start before any presence service: it registers on its
// own, channels without members work at once, a presence subscribe fails
// within its timeout and leaves nothing behind, and everything is counted
// once the service runs.
func TestGatewayStartedBeforeService(t *testing.T) {
	s := natstest.Start(t)
	a, _ := startGateway(t, s, "gw-a")

	news := join(t, a, "news", "1.1", "")
	early := &socket{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := a.Join(ctx, early.request(testApp, testRoom, "1.2", "early")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("presence join without a service: err %v, want ErrUnavailable", err)
	}
	if got := early.got(); len(got) != 0 {
		t.Fatalf("a failed join got %v", got)
	}

	startService(t, s, "p1", fastFlush)
	u1 := join(t, a, testRoom, "1.3", "u1")
	expect(t, u1, time.Second, "ok:u1")
	expect(t, news, time.Second, "ok:")

	r := reader(t, s)
	eventually(t, 3*time.Second, "the operations from before the service applied", func() bool {
		n, err1 := r.Channel(context.Background(), testApp, "news")
		users, err2 := r.Users(context.Background(), testApp, testRoom)
		return err1 == nil && err2 == nil && n.SubscriptionCount == 1 && slices.Equal(users, []string{"u1"})
	})
}
