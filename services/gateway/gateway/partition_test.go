package gateway_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats.go"
)

// A gateway cut off from NATS while its clients stay connected to it. A
// short cut (within HERALD_GATEWAY_TTL): its clients get the events stored
// meanwhile once it is back, in order and once, and its members stay
// members everywhere. A cut past the TTL: the presence service removes its
// members (member_removed elsewhere); once back, the gateway registers again
// with a snapshot of its subscriptions (member_added), and its clients,
// still connected, get the events they missed.
func TestGatewayCutOffFromNATS(t *testing.T) {
	const ttl = 2 * time.Second
	e := newEnv(t)
	proxy := natstest.NewProxy(t, e.srv.Addr().String())
	_, cutHS, _ := e.startGateway(func(o *gateway.Options) {
		nc, err := nats.Connect(proxy.URL(),
			nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		o.NC = nc
		o.GatewayTTL = ttl
	})
	app := e.app("app-1")
	const room = "presence-room"

	ann := connect(t, cutHS, "key-1") // on the gateway that is cut off
	ann.subscribe(app, "news")
	if ids := joinAs(ann, app, room, "ann"); !slices.Equal(ids, []string{"ann"}) {
		t.Fatalf("ann sees %v", ids)
	}
	obs := connect(t, e.hs, "key-1") // on a gateway that keeps NATS
	obs.subscribe(app, "news")
	if ids := joinAs(obs, app, room, "obs"); !slices.Equal(ids, []string{"ann", "obs"}) {
		t.Fatalf("obs sees %v", ids)
	}
	ann.expectMembers("+obs")
	publish := func(data string) {
		e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: data})
	}

	t.Run("shorter than the TTL", func(t *testing.T) {
		ann.t, obs.t = t, t
		proxy.SetCut(true)
		publish("1")
		publish("2")
		time.Sleep(ttl / 4) // the length of the cut
		proxy.SetCut(false)
		publish("3")
		for _, want := range []string{"1", "2", "3"} {
			ann.expectEvent("e", "news", want)
			// Any member event about ann would come before the events.
			obs.expectEvent("e", "news", want)
		}
	})

	// pastTTL cuts the gateway off with cut for longer than the TTL while
	// three events are published, from first on.
	pastTTL := func(t *testing.T, cut func(bool), first int) {
		ann.t, obs.t = t, t
		evs := []string{strconv.Itoa(first), strconv.Itoa(first + 1), strconv.Itoa(first + 2)}
		cut(true)
		publish(evs[0])
		obs.expectEvent("e", "news", evs[0])
		// The cut lasts until the presence service gave up on the gateway.
		if f := obs.read(); f.Event != "pusher_internal:member_removed" || f.Channel != room || f.str(t) != `{"user_id":"ann"}` {
			t.Fatalf("got %s, want member_removed for ann while her gateway is cut off", f.raw)
		}
		publish(evs[1])
		obs.expectEvent("e", "news", evs[1])
		cut(false)
		// Registered again: ann is a member again for everyone.
		obs.expectMembers("+ann")
		publish(evs[2])
		obs.expectEvent("e", "news", evs[2])
		// Ann stayed connected, saw nothing of her removal, and gets what
		// was stored while she was cut off, in order and once.
		var got []string
		for len(got) < len(evs) {
			f := ann.read()
			if f.Event != "e" || f.Channel != "news" {
				t.Fatalf("ann got %s", f.raw)
			}
			got = append(got, f.str(t))
		}
		if !slices.Equal(got, evs) {
			t.Fatalf("ann got events %v, want %v", got, evs)
		}
		ann.ping()
	}
	t.Run("longer than the TTL", func(t *testing.T) { pastTTL(t, proxy.SetCut, 4) })
	t.Run("silent, longer than the TTL", func(t *testing.T) { pastTTL(t, proxy.SetPaused, 7) })
}
