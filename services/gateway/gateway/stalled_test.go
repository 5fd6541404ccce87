package gateway_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// Thousands of clients that never read: each is closed with 4100 once its
// send queue is full, counted once, and what the gateway holds for them is
// bounded by the queue setting (the figure is in BENCHMARKS.md).
func TestStalledClientsAreClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	e := newEnv(t, func(o *gateway.Options) {
		o.WriteQueueBytes = 32 << 10
		o.WriteTimeout = 2 * time.Minute // the queue, not the write timeout, closes them
	})
	app := e.app("app-1")
	hs := httptest.NewUnstartedServer(e.gw.Handler())
	hs.Listener = smallSendBuffer{hs.Listener}
	hs.Start()
	t.Cleanup(hs.Close)

	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return c, err
	}}
	clients := make([]*websocket.Conn, stalledClients)
	var connect sync.WaitGroup
	const dialers = 32
	for w := range dialers {
		connect.Go(func() {
			for i := w; i < len(clients); i += dialers {
				c, _, err := d.Dial(wsURL(hs, "/app/key-1"+query), nil)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				clients[i] = c
				_, _, _ = c.ReadMessage() // connection_established
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:subscribe","data":{"channel":"firehose"}}`))
				if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), "subscription_succeeded") {
					t.Errorf("client %d: subscribe answered %q, %v", i, b, err)
					return
				}
			}
		})
	}
	connect.Wait()
	t.Cleanup(func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	rssBefore := vmKB(t, "VmRSS")

	payload := []byte(strings.Repeat("p", 8000))
	for deadline := time.Now().Add(2 * time.Minute); metric(t, e.reg, "herald_gateway_slow_consumer_closes_total") < stalledClients; {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d stalled clients closed", metric(t, e.reg, "herald_gateway_slow_consumer_closes_total"), stalledClients)
		}
		m := nats.NewMsg(names.LiveSubject(app.ID, "firehose"))
		m.Header.Set(names.HeaderEvent, "fill")
		m.Data = payload
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // paces the publisher
	}
	t.Logf("RSS %d MiB with %d clients subscribed, peak %d MiB while they were closed (test and clients in one process)",
		rssBefore/1024, stalledClients, vmKB(t, "VmHWM")/1024)

	// Now they read: whatever was written before the queue overflowed, then
	// the close 4100.
	var wg sync.WaitGroup
	errs := make(chan error, stalledClients)
	for _, c := range clients {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue
				}
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != protocol.CodeOverCapacity {
					errs <- err
				}
				return
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a stalled client ended with %v, want close 4100", err)
	}
	if got := metric(t, e.reg, "herald_gateway_slow_consumer_closes_total"); got != stalledClients {
		t.Fatalf("%v slow consumers counted for %d clients", got, stalledClients)
	}
}

// vmKB reads a field of /proc/self/status in KiB (0 where there is none).
func vmKB(t *testing.T, field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int
			for _, f := range strings.Fields(rest) {
				for _, r := range f {
					if r < '0' || r > '9' {
						return kb
					}
					kb = kb*10 + int(r-'0')
				}
				return kb
			}
		}
	}
	return 0
}
