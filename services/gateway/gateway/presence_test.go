package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/presence/presencetest"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// testDrainGrace is how long the test presence service holds member_removed
// for the users of a draining gateway.
const testDrainGrace = 1500 * time.Millisecond

// startPresence runs the presence service on the env's NATS server and waits
// until it answers member requests.
func (e *env) startPresence() {
	e.t.Helper()
	opt := presencetest.Options(e.apps)
	opt.DrainGrace = testDrainGrace
	e.presence = presencetest.Start(e.t, e.srv, opt)
}

type memberList struct {
	Presence struct {
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
		Count int                        `json:"count"`
	} `json:"presence"`
}

func parseMembers(t testing.TB, data string) memberList {
	t.Helper()
	var m memberList
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatalf("presence data %s: %v", data, err)
	}
	slices.Sort(m.Presence.IDs)
	return m
}

// joinAs subscribes c to a presence channel of app as user and returns the
// sorted member ids of subscription_succeeded.
func joinAs(c *client, app *appconf.App, ch, user string) []string {
	c.t.Helper()
	c.subscribeFrame(app, ch, `{"user_id":"`+user+`","user_info":{"name":"`+user+`"}}`, true)
	m := parseMembers(c.t, c.expectSucceeded(ch))
	if m.Presence.Count != len(m.Presence.IDs) {
		c.t.Fatalf("member count %d for ids %v", m.Presence.Count, m.Presence.IDs)
	}
	return m.Presence.IDs
}

// channelState reads what the presence service persisted about a channel
// (nil when it is not occupied).
func (e *env) channelState(app, ch string) *presence.ChannelState {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), names.PresenceStateBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	entry, err := kv.Get(context.Background(), names.ChannelStateKey(app, ch))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	var st presence.ChannelState
	if err := json.Unmarshal(entry.Value(), &st); err != nil {
		e.t.Fatal(err)
	}
	return &st
}

// memberEvent reads the next frame, a member event, as "+user" or "-user".
func (c *client) memberEvent() string {
	c.t.Helper()
	f := c.read()
	var d struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(f.str(c.t)), &d); err != nil {
		c.t.Fatalf("member event %s: %v", f.raw, err)
	}
	switch f.Event {
	case protocol.EventMemberAdded:
		return "+" + d.UserID
	case protocol.EventMemberRemoved:
		return "-" + d.UserID
	}
	c.t.Fatalf("got %s, want a member event", f.raw)
	return ""
}

// expectMembers reads member events and checks them, in order.
func (c *client) expectMembers(want ...string) {
	c.t.Helper()
	var got []string
	for range want {
		got = append(got, c.memberEvent())
	}
	if !slices.Equal(got, want) {
		c.t.Fatalf("member events %v, want %v", got, want)
	}
}

func TestPresenceAcrossGateways(t *testing.T) {
	e := newEnv(t)
	_, hs2, _ := e.startGateway()
	app := e.app("app-1")
	const ch = "presence-lobby"

	ann := connect(t, e.hs, "key-1")
	if ids := joinAs(ann, app, ch, "ann"); !slices.Equal(ids, []string{"ann"}) {
		t.Fatalf("ann sees %v", ids)
	}
	bob := connect(t, hs2, "key-1")
	if ids := joinAs(bob, app, ch, "bob"); !slices.Equal(ids, []string{"ann", "bob"}) {
		t.Fatalf("bob sees %v", ids)
	}
	f := ann.expect(protocol.EventMemberAdded)
	if f.Channel != ch || f.str(t) != `{"user_id":"bob","user_info":{"name":"bob"}}` {
		t.Fatalf("member_added %s", f.raw)
	}

	// Bob's second connection, on the other gateway, is no new member and
	// is not announced, not even to bob's first one.
	bob2 := connect(t, e.hs, "key-1")
	if ids := joinAs(bob2, app, ch, "bob"); !slices.Equal(ids, []string{"ann", "bob"}) {
		t.Fatalf("bob's second connection sees %v", ids)
	}

	// A client event crosses gateways with its sender's user_id, and
	// reaches the sender's other connection too.
	bob.send("client-wave", ch, map[string]int{"n": 1})
	for _, c := range []*client{ann, bob2} {
		w := c.expectEvent("client-wave", ch, `{"n":1}`)
		if w.UserID == nil || *w.UserID != "bob" {
			t.Fatalf("client event without bob's user_id: %s", w.raw)
		}
	}

	// The member limit (2) counts the users of every gateway.
	cat := connect(t, hs2, "key-1")
	cat.subscribeFrame(app, ch, `{"user_id":"cat"}`, true)
	refused := cat.expect(protocol.EventSubscriptionError)
	if !strings.Contains(string(refused.Data), `"LimitReached"`) || !strings.Contains(string(refused.Data), "403") {
		t.Fatalf("over the member limit: %s", refused.raw)
	}

	// Bob leaves when his last connection does, wherever it was.
	bob.c.Close()
	bob2.send("pusher:unsubscribe", "", map[string]string{"channel": ch})
	ann.expectMembers("-bob")
	if ids := joinAs(cat, app, ch, "cat"); !slices.Equal(ids, []string{"ann", "cat"}) {
		t.Fatalf("cat sees %v", ids)
	}
	ann.expectMembers("+cat")
	if extra := ann.ping(); len(extra) != 0 {
		t.Fatalf("more frames: %v", extra)
	}
}

func TestSubscriptionCountAcrossGateways(t *testing.T) {
	e := newEnv(t)
	_, hs2, _ := e.startGateway()
	app := e.app("app-count")
	first := connect(t, e.hs, "key-count")
	first.subscribe(app, "ticker")
	connect(t, hs2, "key-count").subscribe(app, "ticker")
	connect(t, hs2, "key-count").subscribe(app, "ticker")
	// Counts are throttled: the latest one reaches every subscriber.
	for {
		f := first.expect(protocol.EventSubscriptionCount)
		if f.Channel != "ticker" {
			t.Fatalf("count on %q", f.Channel)
		}
		if f.str(t) == `{"subscription_count":3}` {
			break
		}
	}

	// An app without subscription counts gets none.
	plain := connect(t, e.hs, "key-1")
	plain.subscribe(e.app("app-1"), "ticker")
	connect(t, hs2, "key-1").subscribe(e.app("app-1"), "ticker")
	eventually(t, "both subscriptions counted", func() bool {
		st := e.channelState("app-1", "ticker")
		return st != nil && st.SubscriptionCount == 2
	})
	if extra := plain.ping(); len(extra) != 0 {
		t.Fatalf("frames for an app without counts: %v", extra)
	}
}

func TestDeadGatewayMembersRemoved(t *testing.T) {
	e := newEnv(t)
	hs2, nc := e.mortalGateway()
	app := e.app("app-1")
	const ch = "presence-crash"
	ann := connect(t, e.hs, "key-1")
	joinAs(ann, app, ch, "ann")
	bob := connect(t, hs2, "key-1")
	joinAs(bob, app, ch, "bob")
	ann.expectMembers("+bob")

	// The second gateway loses NATS for good, as a killed process would:
	// no leave, no drain, its heartbeat just stops.
	nc.Close()
	ann.expectMembers("-bob")
	eventually(t, "the dead gateway's subscription uncounted", func() bool {
		st := e.channelState(app.ID, ch)
		return st != nil && st.SubscriptionCount == 1 && st.UserCount == 1
	})
}

func TestDrainedGatewayDoesNotFlap(t *testing.T) {
	e := newEnv(t)
	gw2, hs2, _ := e.startGateway()
	app := e.app("app-count") // room for four members
	const ch = "presence-restart"
	ann := connect(t, e.hs, "key-count")
	joinAs(ann, app, ch, "ann")
	bob := connect(t, hs2, "key-count")
	joinAs(bob, app, ch, "bob")
	ann.expectMembers("+bob")
	dan := connect(t, hs2, "key-count")
	joinAs(dan, app, ch, "dan")
	ann.expectMembers("+dan")
	bob.expectMembers("+dan")

	// The second gateway restarts: bob reconnects to the first within the
	// drain grace and is never announced as gone; dan does not come back.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw2.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	bob.expectClose(protocol.CodeGenericReconnect)
	dan.expectClose(protocol.CodeGenericReconnect)
	bobAgain := connect(t, e.hs, "key-count")
	if ids := joinAs(bobAgain, app, ch, "bob"); !slices.Equal(ids, []string{"ann", "bob", "dan"}) {
		t.Fatalf("bob back sees %v", ids)
	}
	ann.expectMembers("-dan")
	// Once no grace is pending, a new member is a barrier: any member
	// event about bob would have come before it.
	eventually(t, "the drain grace over", func() bool {
		st := e.channelState(app.ID, ch)
		if st == nil || len(st.Members) != 2 {
			return false
		}
		for _, m := range st.Members {
			if m.GraceUntil != 0 {
				return false
			}
		}
		return true
	})
	eve := connect(t, e.hs, "key-count")
	joinAs(eve, app, ch, "eve")
	ann.expectMembers("+eve")
}
