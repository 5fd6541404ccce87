package globalstate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
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
	expect(t, u1, "ok:u1")
	expect(t, news, "ok:")

	r := reader(t, s)
	poll.Until(t, poll.Patience, "the operations from before the service applied", func() bool {
		n, err1 := r.Channel(context.Background(), testApp, "news")
		users, err2 := r.Users(context.Background(), testApp, testRoom)
		return err1 == nil && err2 == nil && n.SubscriptionCount == 1 && slices.Equal(users, []string{"u1"})
	})
}

// A gateway whose first heartbeat write gets no answer (the bucket's
// stream is not taking it yet, as while a fresh replicated bucket elects
// its leader) waits and registers once the stream answers.
func TestRegistrationWaitsForTheBucket(t *testing.T) {
	s := natstest.Start(t)
	nc, js := natstest.JetStream(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, presence.GatewaysBucketConfig(presence.Options{})); err != nil {
		t.Fatal(err)
	}
	// The bucket's stream stops taking its keys: a write gets no answer.
	stream, err := js.Stream(ctx, "KV_"+names.GatewaysBucket)
	if err != nil {
		t.Fatal(err)
	}
	taking := stream.CachedInfo().Config
	deaf := taking
	deaf.Subjects = []string{"$KV." + names.GatewaysBucket + ".none"}
	if _, err := js.UpdateStream(ctx, deaf); err != nil {
		t.Fatal(err)
	}
	writes, err := nc.SubscribeSync("$KV." + names.GatewaysBucket + ".>")
	if err != nil {
		t.Fatal(err)
	}

	gw, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	done := make(chan error, 1)
	go func() {
		c, err := New(ctx, Options{NC: gw, ID: "gw-a", TTL: time.Second})
		if err == nil {
			t.Cleanup(func() { _ = c.Close(context.Background()) })
		}
		done <- err
	}()
	if _, err := writes.NextMsg(20 * time.Second); err != nil {
		t.Fatalf("no heartbeat write: %v", err)
	}
	if _, err := js.UpdateStream(ctx, taking); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the gateway did not wait for its bucket: %v", err)
	}
	kv, err := js.KeyValue(ctx, names.GatewaysBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, names.GatewayKey("gw-a")); err != nil {
		t.Fatalf("heartbeat key: %v", err)
	}
}
