package service

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
)

// The active presence service cut off from NATS (not stopped), by a cut that
// resets its connection or one that silently holds its packets: the standby
// takes over within the lock TTL, and every member event is published once,
// none lost and none doubled, through the cut and after the cut-off
// instance is back.
func TestActiveCutOffStandbyTakesOver(t *testing.T) {
	t.Run("reset", func(t *testing.T) { cutOffActive(t, (*natstest.Proxy).SetCut) })
	t.Run("silent", func(t *testing.T) { cutOffActive(t, (*natstest.Proxy).SetPaused) })
}

func cutOffActive(t *testing.T, cut func(*natstest.Proxy, bool)) {
	s, _ := setup(t)
	proxy := natstest.NewProxy(t, s.Addr().String())
	nc, err := nats.Connect(proxy.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	first, err := New(Options{NC: nc, Instance: "cut", LockTTL: time.Second, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Run's error is not checked: the cut-off instance may stop with one.
	background(t, first, func(error) {})
	poll.Until(t, poll.Patience, "the first instance is active", first.Active)

	standby, err := New(Options{NC: natstest.Connect(t, s), Instance: "standby", LockTTL: time.Second, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	background(t, standby, func(error) {})

	// Every member event of the channel, as gateways receive them.
	var (
		mu  sync.Mutex
		got []string
	)
	watch := natstest.Connect(t, s)
	if _, err := watch.Subscribe(names.MemberLiveSubject("a", "presence-r"), func(m *nats.Msg) {
		ev, err := presence.ParseLiveMemberEvent(m)
		if err != nil {
			t.Errorf("member event: %v", err)
			return
		}
		sign := "+"
		if ev.Event == "pusher_internal:member_removed" {
			sign = "-"
		}
		mu.Lock()
		got = append(got, sign+ev.UserID)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	seen := func(want ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Equal(got, want)
		}
	}
	g := register(t, s, "gw-1")
	join := func(socket, user string) {
		g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: socket, UserID: user})
	}

	join("1.1", "u1")
	poll.Until(t, poll.Patience, "+u1", seen("+u1"))

	cut(proxy, true)
	poll.Until(t, poll.Patience, "the standby to take over", standby.Active)
	join("1.2", "u2")
	g.publish(presence.Op{Op: presence.Leave, App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1"})
	poll.Until(t, poll.Patience, "+u2 and -u1 from the standby", seen("+u1", "+u2", "-u1"))

	cut(proxy, false)
	poll.Until(t, poll.Patience, "the cut-off instance to be back on NATS", nc.IsConnected)
	// Once back, the cut-off instance learns that its lock is gone and
	// stands down; whatever it sent meanwhile comes before the barrier.
	poll.Until(t, poll.Patience, "the cut-off instance to stand down", func() bool { return !first.Active() })
	join("1.3", "u3")
	poll.Until(t, poll.Patience, "+u3", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, "+u3")
	})
	if !seen("+u1", "+u2", "-u1", "+u3")() {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("member events %v, want +u1 +u2 -u1 +u3", got)
	}
}
