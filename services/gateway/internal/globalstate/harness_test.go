package globalstate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/presence/presencetest"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	testApp  = "app1"
	testRoom = "presence-room"
)

// testApps allows 3 members per presence channel and subscription counts.
func testApps(t testing.TB) *appconf.Registry {
	t.Helper()
	reg, err := appconf.NewRegistry([]appconf.App{{ID: testApp, Key: "key1", Secret: "s3cr3t-for-tests-0123",
		MaxPresenceMembers: 3, SubscriptionCount: true}})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// startService runs a presence instance with short timings. A long flush
// interval leaves applied operations unpersisted and unacknowledged for a
// while, so that a crash makes the next instance replay them.
func startService(t testing.TB, s *server.Server, name string, flush time.Duration) *presencetest.Service {
	t.Helper()
	opt := presencetest.Options(testApps(t))
	opt.Instance, opt.FlushInterval = name, flush
	opt.CountInterval = 200 * time.Millisecond
	return presencetest.Start(t, s, opt)
}

const fastFlush = 20 * time.Millisecond

// twoGateways starts a NATS server, presence service p1 and gateways gw-a
// and gw-b on it; bnc is gw-b's NATS connection.
func twoGateways(t testing.TB) (s *server.Server, a, b *Client, bnc *nats.Conn) {
	t.Helper()
	s = natstest.Start(t)
	startService(t, s, "p1", fastFlush)
	a, _ = startGateway(t, s, "gw-a")
	b, bnc = startGateway(t, s, "gw-b")
	return s, a, b, bnc
}

func startGateway(t testing.TB, s *server.Server, id string) (*Client, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := New(context.Background(), Options{NC: nc, ID: id, TTL: time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, nc
}

// socket records what one subscription receives, as "+user", "-user",
// "count:n" and, first, "ok:[ids]".
type socket struct {
	mu     sync.Mutex
	frames []string
}

func (s *socket) add(f string) {
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
}

func (s *socket) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames)
}

func (s *socket) request(app, channel, id, user string) JoinRequest {
	req := JoinRequest{App: app, Channel: channel, SocketID: id, UserID: user,
		Ready: func(snap Snapshot) { s.add("ok:" + strings.Join(snap.IDs(), ",")) },
		Deliver: func(e *Event) {
			switch e.Name {
			case protocol.EventMemberAdded:
				s.add("+" + e.UserID)
			case protocol.EventMemberRemoved:
				s.add("-" + e.UserID)
			case protocol.EventSubscriptionCount:
				n, _ := presence.ParseCountData(e.Data)
				s.add(fmt.Sprintf("count:%d", n))
			}
			if !json.Valid(e.Frame()) {
				panic("invalid frame " + string(e.Frame()))
			}
		}}
	if user != "" {
		req.UserInfo = json.RawMessage(`{"name":"` + user + `"}`)
	}
	return req
}

// join subscribes a new recorded socket, failing the test on error.
func join(t testing.TB, c *Client, channel, id, user string) *socket {
	t.Helper()
	s := &socket{}
	if _, err := c.Join(context.Background(), s.request(testApp, channel, id, user)); err != nil {
		t.Fatalf("join %s as %s on %s: %v", id, user, c.ID(), err)
	}
	return s
}

// stored waits until a gateway's operations are in the stream: operations
// of different gateways are ordered only by when they are stored.
func stored(c *Client) {
	for {
		c.pubMu.Lock()
		idle := c.inflight == 0 && len(c.queued) == 0
		c.pubMu.Unlock()
		if idle {
			break
		}
		time.Sleep(time.Millisecond)
	}
	<-c.js.PublishAsyncComplete()
}

// expect waits until the socket received want (exactly, in order).
func expect(t *testing.T, s *socket, want ...string) {
	t.Helper()
	deadline := time.Now().Add(poll.Patience)
	for {
		got := s.got()
		if slices.Equal(got, want) {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("socket got %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitActive(t *testing.T, ins ...*presencetest.Service) *presencetest.Service {
	t.Helper()
	var active *presencetest.Service
	poll.Until(t, poll.Patience, "one active presence instance", func() bool {
		active = nil
		n := 0
		for _, in := range ins {
			if in.Active() {
				active, n = in, n+1
			}
		}
		return n == 1
	})
	return active
}

func reader(t testing.TB, s *server.Server) *presence.Reader {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	r, err := presence.NewReader(context.Background(), js, presence.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
