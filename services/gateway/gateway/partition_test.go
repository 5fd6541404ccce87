package gateway_test

import (
	"net"
	"slices"
	"strconv"
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
	t.Run("longer than the TTL", func(t *testing.T) { pastTTL(t, proxy.setCut, 4) })
	t.Run("silent, longer than the TTL", func(t *testing.T) { pastTTL(t, proxy.setPaused, 7) })
}
