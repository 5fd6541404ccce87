package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/scripts/loadgen/internal/payload"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/signing"
)

const (
	testAppID  = "bench"
	testKey    = "bench-key"
	testSecret = "bench-secret-0123456789"
)

// fakeServer is a minimal Pusher server: enough of the protocol to drive
// the load generator, with faults to inject so its accounting can be
// checked against what really happened on the wire.
type fakeServer struct {
	mu sync.Mutex
	// subs by channel
	subs map[string][]*fakeConn
	// faults, by the event's sequence number
	duplicate uint64 // sent twice to everyone
	dropFirst uint64 // not sent to the first subscriber of each channel
	holdBack  uint64 // accepted, but sent after the next event
	held      [][]byte
	// pingEach makes the server ping every new connection once.
	pingEach bool
	pongs    atomic.Int64
	nextID   atomic.Int64
}

type fakeConn struct {
	mu sync.Mutex
	ws *websocket.Conn
}

func (c *fakeConn) send(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.WriteMessage(websocket.TextMessage, b)
}

func newFake() *fakeServer {
	return &fakeServer{subs: map[string][]*fakeConn{}, duplicate: ^uint64(0), dropFirst: ^uint64(0), holdBack: ^uint64(0)}
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app/{key}", f.serveWS)
	mux.HandleFunc("POST /apps/{id}/events", f.serveEvents)
	mux.HandleFunc("POST /apps/{id}/batch_events", f.serveEvents)
	return mux
}

// startFake serves a fake server on loopback for the test's duration.
func startFake(t testing.TB) (*fakeServer, *httptest.Server) {
	f := newFake()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("key") != testKey || r.URL.Query().Get("protocol") != "7" {
		http.Error(w, "bad key or protocol", http.StatusBadRequest)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	c := &fakeConn{ws: ws}
	socketID := "1." + strconv.FormatInt(f.nextID.Add(1), 10)
	c.send(protocol.ConnectionEstablished(socketID, 30))
	if f.pingEach {
		c.send(protocol.Ping)
	}
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		fr, err := protocol.DecodeFrame(b)
		if err != nil {
			continue
		}
		switch fr.Event {
		case protocol.EventPong:
			f.pongs.Add(1)
		case protocol.EventPing:
			c.send(protocol.Pong)
		case protocol.EventSubscribe:
			var d protocol.SubscribeData
			if err := protocol.DecodeData(fr.Data, &d); err != nil {
				continue
			}
			if protocol.ChannelKind(d.Channel).NeedsAuth() &&
				!signing.VerifyChannelAuth(testKey, testSecret, socketID, d.Channel, "", d.Auth) {
				c.send(protocol.SubscriptionError(d.Channel, "AuthError", "bad auth", 401))
				continue
			}
			f.mu.Lock()
			f.subs[d.Channel] = append(f.subs[d.Channel], c)
			f.mu.Unlock()
			c.send(protocol.EventFrame(protocol.EventSubscriptionSucceeded, d.Channel, "{}", nil))
		}
	}
}

func (f *fakeServer) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := signing.VerifyRequest(r.Method, r.URL.Path, r.URL.RawQuery, body, testKey, testSecret, time.Now()); err != nil {
		http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusUnauthorized)
		return
	}
	type event struct{ Name, Channel, Data string }
	var evs []event
	if strings.HasSuffix(r.URL.Path, "/batch_events") {
		var b struct{ Batch []event }
		json.Unmarshal(body, &b)
		evs = b.Batch
	} else {
		var e event
		json.Unmarshal(body, &e)
		evs = []event{e}
	}
	for _, e := range evs {
		frame := protocol.EventFrame(e.Name, e.Channel, e.Data, nil)
		p, _ := payload.FromFrame(frame)
		f.mu.Lock()
		subs := append([]*fakeConn(nil), f.subs[e.Channel]...)
		var release [][]byte
		switch p.Seq {
		case f.holdBack:
			f.held = append(f.held, frame)
			f.mu.Unlock()
			continue
		case f.holdBack + 1:
			release, f.held = f.held, nil
		}
		f.mu.Unlock()
		for i, c := range subs {
			if i == 0 && p.Seq == f.dropFirst {
				continue
			}
			c.send(frame)
			if p.Seq == f.duplicate {
				c.send(frame)
			}
		}
		// The held-back event follows the one after it.
		for _, fr := range release {
			for _, c := range subs {
				c.send(fr)
			}
		}
	}
	w.Write([]byte("{}"))
}
