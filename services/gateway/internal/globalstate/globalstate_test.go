package globalstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

func TestMemberEventsExactlyOnceAcrossGateways(t *testing.T) {
	s, a, b, _ := twoGateways(t)

	a1 := join(t, a, testRoom, "1.1", "u1")
	b1 := join(t, b, testRoom, "2.1", "u2")
	a2 := join(t, a, testRoom, "1.2", "u2") // u2's second connection: no event
	b.Leave(testApp, testRoom, "2.1")       // u2 still on gw-a: no event
	a.Leave(testApp, testRoom, "1.2")       // u2's last connection
	stored(a)
	b3 := join(t, b, testRoom, "2.3", "u3") // a barrier: every earlier event is in before it

	expect(t, a1, "ok:u1", "+u2", "-u2", "+u3")
	expect(t, b1, "ok:u1,u2")
	expect(t, a2, "ok:u1,u2")
	expect(t, b3, "ok:u1,u3")

	r := reader(t, s)
	poll.Until(t, poll.Patience, "the reader sees u1 and u3", func() bool {
		info, err := r.Channel(context.Background(), testApp, testRoom)
		users, _ := r.Users(context.Background(), testApp, testRoom)
		return err == nil && info.UserCount == 2 && info.SubscriptionCount == 2 && slices.Equal(users, []string{"u1", "u3"})
	})
}

func TestMemberLimitAndReaderCounts(t *testing.T) {
	s, a, b, _ := twoGateways(t)

	for i, u := range []string{"u1", "u2", "u3"} {
		join(t, []*Client{a, b}[i%2], testRoom, "9."+u, u)
	}
	over := &socket{}
	if _, err := b.Join(context.Background(), over.request(testApp, testRoom, "9.u4", "u4")); !errors.Is(err, ErrLimit) {
		t.Fatalf("fourth member: err %v, want ErrLimit", err)
	}
	join(t, a, testRoom, "9.u1b", "u1") // a member's second connection is no new member

	for i, id := range []string{"1.1", "1.2", "2.1"} {
		join(t, []*Client{a, a, b}[i], "news", id, "")
	}
	join(t, b, "news-eu", "2.2", "")
	a.Leave(testApp, "news", "1.2")

	r := reader(t, s)
	ctx := context.Background()
	poll.Until(t, poll.Patience, "channel state persisted", func() bool {
		news, err1 := r.Channel(ctx, testApp, "news")
		room, err2 := r.Channel(ctx, testApp, testRoom)
		eu, err3 := r.Channel(ctx, testApp, "news-eu")
		return err1 == nil && err2 == nil && err3 == nil && news.SubscriptionCount == 2 && room.UserCount == 3 &&
			room.SubscriptionCount == 4 && eu.Occupied
	})
	list, err := r.Channels(ctx, testApp, "news")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "news" || list[1].Name != "news-eu" || list[1].SubscriptionCount != 1 {
		t.Fatalf("channels with prefix news: %+v", list)
	}
	if none, _ := r.Channel(ctx, testApp, "empty"); none.Occupied || none.SubscriptionCount != 0 {
		t.Fatalf("unoccupied channel: %+v", none)
	}
}

func TestSubscriptionCounts(t *testing.T) {
	_, a, b, _ := twoGateways(t)

	counted := func(c *Client, id string) *socket {
		sk := &socket{}
		req := sk.request(testApp, "ticker", id, "")
		req.Counts = true
		if _, err := c.Join(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		return sk
	}
	s1 := counted(a, "1.1")
	counted(b, "2.1")
	counted(b, "2.2")
	poll.Until(t, poll.Patience, "the latest count reaches the first socket", func() bool {
		got := s1.got()
		return len(got) > 1 && got[len(got)-1] == "count:3"
	})
}

func TestGatewayWithoutHeartbeatIsRemoved(t *testing.T) {
	s, a, b, bnc := twoGateways(t)

	a1 := join(t, a, testRoom, "1.1", "u1")
	join(t, b, testRoom, "2.1", "u2")
	join(t, b, "news", "2.2", "")
	expect(t, a1, "ok:u1", "+u2")

	bnc.Close() // gw-b dies: no leave, no more heartbeats
	expect(t, a1, "ok:u1", "+u2", "-u2")

	r := reader(t, s)
	poll.Until(t, poll.Patience, "gw-b's subscriptions gone from the state", func() bool {
		news, err := r.Channel(context.Background(), testApp, "news")
		return err == nil && !news.Occupied
	})
}

func TestGatewayRegistersAgainAfterLosingItsKey(t *testing.T) {
	s, a, b, _ := twoGateways(t)

	a1 := join(t, a, testRoom, "1.1", "u1")
	join(t, b, testRoom, "2.1", "u2")
	expect(t, a1, "ok:u1", "+u2")

	// The key vanishes while gw-b lives (an operator, a partition longer
	// than the TTL). gw-b notices at its next renewal and registers again
	// with a snapshot: if the service removed it first, u2 comes back.
	b.pubMu.Lock()
	reg := b.reg
	b.pubMu.Unlock()
	if err := b.kv.Purge(context.Background(), "gw-b"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, poll.Patience, "gw-b registers again", func() bool {
		b.pubMu.Lock()
		defer b.pubMu.Unlock()
		return b.reg > reg
	})
	join(t, b, testRoom, "2.5", "u5") // barrier: applied after the snapshot
	poll.Until(t, poll.Patience, "the barrier reaches u1", func() bool {
		got := a1.got()
		return got[len(got)-1] == "+u5"
	})
	got := a1.got()
	if !slices.Equal(got, []string{"ok:u1", "+u2", "+u5"}) && !slices.Equal(got, []string{"ok:u1", "+u2", "-u2", "+u2", "+u5"}) {
		t.Fatalf("u1 got %v", got)
	}
	users, err := reader(t, s).Users(context.Background(), testApp, testRoom)
	poll.Until(t, poll.Patience, "u2 is a member again", func() bool {
		users, err = reader(t, s).Users(context.Background(), testApp, testRoom)
		return err == nil && slices.Equal(users, []string{"u1", "u2", "u5"})
	})
}

func TestDrainGraceKeepsReturningUsers(t *testing.T) {
	_, a, b, _ := twoGateways(t)

	a1 := join(t, a, testRoom, "1.1", "u1")
	join(t, b, testRoom, "2.1", "u2")
	join(t, b, testRoom, "2.2", "u3")
	expect(t, a1, "ok:u1", "+u2", "+u3")

	// gw-b restarts: u2 comes back on gw-a within the grace, u3 does not.
	if err := b.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Leave(testApp, testRoom, "2.1")
	b.Leave(testApp, testRoom, "2.2")
	ctx, cancel := context.WithTimeout(context.Background(), poll.Patience)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	back := join(t, a, testRoom, "1.2", "u2")
	expect(t, back, "ok:u1,u2,u3")
	expect(t, a1, "ok:u1", "+u2", "+u3", "-u3")
}

func TestServiceRestartMidSession(t *testing.T) {
	s := natstest.Start(t)
	p1 := startService(t, s, "p1", 500*time.Millisecond)
	a, _ := startGateway(t, s, "gw-a")
	b, _ := startGateway(t, s, "gw-b")

	obs := join(t, a, testRoom, "1.0", "obs")
	join(t, a, testRoom, "1.1", "u1")
	join(t, b, testRoom, "2.1", "u2")
	b.Leave(testApp, testRoom, "2.1")
	expect(t, obs, "ok:obs", "+u1", "+u2", "-u2")
	// Crash within the flush interval: the next instance loads a state
	// without these operations and applies them again; their events must
	// not reach anyone twice.
	p1.Crash()

	// Operations while no instance runs wait in the stream; the join
	// below waits for the next instance to answer.
	a.Leave(testApp, testRoom, "1.1")
	stored(a)
	watcher := &socket{}
	joined := make(chan error, 1)
	go func() {
		_, err := b.Join(context.Background(), watcher.request(testApp, testRoom, "2.9", "u9"))
		joined <- err
	}()
	startService(t, s, "p2", fastFlush)
	if err := <-joined; err != nil {
		t.Fatalf("join across the restart: %v", err)
	}
	join(t, a, testRoom, "1.3", "u3") // barrier
	expect(t, obs, "ok:obs", "+u1", "+u2", "-u2", "-u1", "+u9", "+u3")
	expect(t, watcher, "ok:obs,u9", "+u3")
}

func TestActiveStandbyFailover(t *testing.T) {
	s := natstest.Start(t)
	p1 := startService(t, s, "p1", 500*time.Millisecond)
	p2 := startService(t, s, "p2", 500*time.Millisecond)
	active := waitActive(t, p1, p2)
	standby := p1
	if active == p1 {
		standby = p2
	}
	a, _ := startGateway(t, s, "gw-a")
	b, _ := startGateway(t, s, "gw-b")

	a1 := join(t, a, testRoom, "1.1", "u1")
	join(t, b, testRoom, "2.1", "u2")
	b.Leave(testApp, testRoom, "2.1")
	expect(t, a1, "ok:u1", "+u2", "-u2")
	if standby.Active() {
		t.Fatal("two active instances")
	}

	active.Crash()
	poll.Until(t, poll.Patience, "the standby takes over", standby.Active)
	join(t, b, testRoom, "2.3", "u3") // barrier
	expect(t, a1, "ok:u1", "+u2", "-u2", "+u3")
}

// deafen drops a gateway's live member events of a channel until the
// returned function is called: as a relay lost to a slow consumer or a
// reconnect would.
func deafen(t *testing.T, c *Client, channel string) func() {
	t.Helper()
	c.mu.Lock()
	ch := c.channels[chanKey{testApp, channel}]
	c.mu.Unlock()
	ch.mu.Lock()
	old := ch.members
	ch.mu.Unlock()
	if err := old.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	return func() {
		s, err := c.nc.Subscribe(old.Subject, ch.onMember)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		ch.mu.Lock()
		ch.members = s
		ch.mu.Unlock()
	}
}

func TestLostLiveEventIsRecovered(t *testing.T) {
	tests := []struct {
		name    string
		recover func(a, b *Client)
	}{
		// The next event names a predecessor the gateway never saw.
		{"gap seen on the next event", func(a, b *Client) { join(t, b, testRoom, "2.3", "u3") }},
		// Nothing follows: the reconnect handler refetches.
		{"reconnect", func(a, b *Client) { a.Reconnected() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, a, b, _ := twoGateways(t)
			a1 := join(t, a, testRoom, "1.1", "u1")

			hear := deafen(t, a, testRoom)
			join(t, b, testRoom, "2.2", "u2")
			hear()
			tt.recover(a, b)
			poll.Until(t, poll.Patience, "u1 learns of u2", func() bool { return slices.Contains(a1.got(), "+u2") })
			b.Leave(testApp, testRoom, "2.2") // barrier
			poll.Until(t, poll.Patience, "u1 learns u2 left", func() bool { return slices.Contains(a1.got(), "-u2") })
			got := a1.got()
			want := []string{"ok:u1", "+u2", "-u2"}
			if tt.name != "reconnect" {
				want = []string{"ok:u1", "+u2", "+u3", "-u2"}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("u1 got %v, want %v", got, want)
			}
		})
	}
}

// A member_added told from a member list (a refetch, or the list of a later
// subscribe on the same gateway arriving before the live event) is the frame
// the live event carries, with or without user_info.
func TestMemberAddedFromAListIsTheLiveFrame(t *testing.T) {
	for _, tt := range []struct {
		name, info, want string
	}{
		{"without user_info", "", `{"user_id":"u2"}`},
		{"with user_info", `{"name":"Bo"}`, `{"user_id":"u2","user_info":{"name":"Bo"}}`},
	} {
		for _, fromList := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, from the list %v", tt.name, fromList), func(t *testing.T) {
				_, a, b, _ := twoGateways(t)
				added := make(chan string, 4)
				watcher := JoinRequest{App: testApp, Channel: testRoom, SocketID: "1.1", UserID: "u1",
					Deliver: func(e *Event) {
						if e.Name == protocol.EventMemberAdded {
							added <- string(e.Data)
						}
					}}
				if _, err := a.Join(context.Background(), watcher); err != nil {
					t.Fatal(err)
				}
				var hear func()
				if fromList {
					hear = deafen(t, a, testRoom)
				}
				req := JoinRequest{App: testApp, Channel: testRoom, SocketID: "2.1", UserID: "u2"}
				if tt.info != "" {
					req.UserInfo = json.RawMessage(tt.info)
				}
				if _, err := b.Join(context.Background(), req); err != nil {
					t.Fatal(err)
				}
				if fromList {
					hear()
					a.Reconnected() // refetches the list, which has u2
				}
				select {
				case got := <-added:
					if got != tt.want {
						t.Fatalf("member_added data %s, want %s", got, tt.want)
					}
				case <-time.After(poll.Patience):
					t.Fatal("no member_added of u2")
				}
			})
		}
	}
}

// A member_removed that comes back while Leave is still under way reaches
// the other sockets of the gateway: the leaving socket is out of the channel
// before its leave goes out, so it does not count as the user still here.
func TestMemberRemovedWhileLeaveIsUnderWay(t *testing.T) {
	s, a, _, _ := twoGateways(t)
	a1 := join(t, a, testRoom, "1.1", "u1")
	join(t, a, testRoom, "1.2", "u2")
	expect(t, a1, "ok:u1", "+u2")
	a.mu.Lock()
	ch := a.channels[chanKey{testApp, testRoom}]
	a.mu.Unlock()

	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	members, err := js.Stream(context.Background(), names.MembersStream)
	if err != nil {
		t.Fatal(err)
	}
	// removalSeen: u2's member_removed is stored and gw-a's view has moved
	// past it.
	removalSeen := func() bool {
		m, err := members.GetLastMsgForSubject(context.Background(), names.MemberEventSubject(testApp, testRoom))
		if err != nil || m.Header.Get(names.HeaderEvent) != protocol.EventMemberRemoved {
			return false
		}
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return ch.pos >= m.Sequence
	}
	// Leave stops where it takes the channel list (held here), with pubMu
	// held when the socket leaves first, after its leave went out if not.
	held := 0
	leaveWaits := func() bool {
		if a.pubMu.TryLock() {
			a.pubMu.Unlock()
			held = 0
			return false
		}
		held++
		return held >= 40
	}
	a.mu.Lock()
	left := make(chan struct{})
	go func() {
		defer close(left)
		a.Leave(testApp, testRoom, "1.2")
	}()
	poll.Until(t, 20*time.Second, "u2's removal applied, or Leave waiting before its leave goes out", func() bool {
		return removalSeen() || leaveWaits()
	})
	a.mu.Unlock()
	<-left
	expect(t, a1, "ok:u1", "+u2", "-u2")
}
