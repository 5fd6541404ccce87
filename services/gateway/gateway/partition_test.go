package gateway_test

import (
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/events"
	"github.com/nats-io/nats.go"
)

// cutProxy forwards TCP to the NATS server until it is cut: then it drops
// every connection and refuses new ones, as a network partition seen by a
// client that gets a reset, until it is restored. Paused, it forwards
// nothing and drops nothing, as a partition that silently loses packets
// (TCP keeps what it could not send and sends it once the path is back).
type cutProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cut      bool
	open     []net.Conn
	paused   bool
	resumed  *sync.Cond
}

func newCutProxy(t testing.TB, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream}
	p.resumed = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
	})
	return p
}

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.open = append(p.open, c, u)
		p.mu.Unlock()
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

// pipe copies src to dst, holding each read while the proxy is paused.
func (p *cutProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		for p.paused {
			p.resumed.Wait()
		}
		p.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

func (p *cutProxy) setPaused(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = paused
	p.resumed.Broadcast()
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.open {
			c.Close()
		}
		p.open = nil
	}
}

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
	proxy := newCutProxy(t, e.srv.Addr().String())
	_, cutHS, _ := e.startGateway(func(o *gateway.Options) {
		nc, err := nats.Connect("nats://"+proxy.ln.Addr().String(),
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
		proxy.setCut(true)
		publish("1")
		publish("2")
		time.Sleep(ttl / 4) // the length of the cut
		proxy.setCut(false)
		publish("3")
		for _, want := range []string{"1", "2", "3"} {
			ann.expectEvent("e", "news", want)
			// Any member event about ann would come before the events.
			obs.expectEvent("e", "news", want)
		}
	})

	t.Run("longer than the TTL", func(t *testing.T) {
		ann.t, obs.t = t, t
		proxy.setCut(true)
		publish("4")
		obs.expectEvent("e", "news", "4")
		// The cut lasts until the presence service gave up on the gateway.
		for deadline := time.Now().Add(5 * ttl); ; {
			f, err := obs.tryRead()
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("no member_removed for ann while her gateway was cut off (%v)", err)
			}
			if f.Event == "pusher_internal:member_removed" && f.Channel == room && f.str(t) == `{"user_id":"ann"}` {
				break
			}
			t.Fatalf("unexpected %s", f.raw)
		}
		publish("5")
		obs.expectEvent("e", "news", "5")
		proxy.setCut(false)
		// Registered again: ann is a member again for everyone.
		obs.expectMembers("+ann")
		publish("6")
		obs.expectEvent("e", "news", "6")
		// Ann stayed connected and gets what was stored while she was cut
		// off, in order and once.
		var got []string
		for len(got) < 3 {
			f := ann.read()
			switch {
			case f.Event == "e" && f.Channel == "news":
				got = append(got, f.str(t))
			default:
				t.Fatalf("ann got %s", f.raw)
			}
		}
		if !slices.Equal(got, []string{"4", "5", "6"}) {
			t.Fatalf("ann got events %v, want 4, 5, 6", got)
		}
		ann.ping()
	})

	t.Run("silent, longer than the TTL", func(t *testing.T) {
		ann.t, obs.t = t, t
		proxy.setPaused(true)
		publish("7")
		obs.expectEvent("e", "news", "7")
		for deadline := time.Now().Add(5 * ttl); ; {
			f, err := obs.tryRead()
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("no member_removed for ann while her gateway was cut off (%v)", err)
			}
			if f.Event == "pusher_internal:member_removed" && f.Channel == room && f.str(t) == `{"user_id":"ann"}` {
				break
			}
			t.Fatalf("unexpected %s", f.raw)
		}
		publish("8")
		obs.expectEvent("e", "news", "8")
		proxy.setPaused(false)
		obs.expectMembers("+ann")
		publish("9")
		obs.expectEvent("e", "news", "9")
		var got []string
		for len(got) < 3 {
			f := ann.read()
			switch {
			case f.Event == "e" && f.Channel == "news":
				got = append(got, f.str(t))
			default:
				t.Fatalf("ann got %s", f.raw)
			}
		}
		if !slices.Equal(got, []string{"7", "8", "9"}) {
			t.Fatalf("ann got events %v, want 7, 8, 9", got)
		}
		ann.ping()
	})
}
