package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats.go"
)

var socketIDRe = regexp.MustCompile(`^\d+\.\d+$`)

func TestConnectionEstablished(t *testing.T) {
	e := newEnv(t)
	seen := map[string]bool{}
	for range 3 {
		c := dial(t, e.hs, "/app/key-1"+query, nil)
		f := c.expect("pusher:connection_established")
		var d struct {
			SocketID        string `json:"socket_id"`
			ActivityTimeout int    `json:"activity_timeout"`
		}
		if err := json.Unmarshal([]byte(f.str(t)), &d); err != nil {
			t.Fatalf("data %s: %v", f.Data, err)
		}
		if !socketIDRe.MatchString(d.SocketID) {
			t.Errorf("socket_id %q does not match %s", d.SocketID, socketIDRe)
		}
		if !strings.HasPrefix(d.SocketID, e.gw.ID()+".") {
			t.Errorf("socket_id %q does not start with the gateway id %s", d.SocketID, e.gw.ID())
		}
		if seen[d.SocketID] {
			t.Errorf("socket_id %q handed out twice", d.SocketID)
		}
		seen[d.SocketID] = true
		if d.ActivityTimeout != 45 {
			t.Errorf("activity_timeout = %d, want the app's 45", d.ActivityTimeout)
		}
	}
	e.wantMetric("herald_gateway_connections", 3)
	other, _, _ := e.startGateway()
	if other.ID() == e.gw.ID() {
		t.Errorf("two gateways share the id %s", other.ID())
	}
}

func TestRefusedConnections(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		path   string
		origin string
		code   int
	}{
		{"unknown key", "/app/nope" + query, "", protocol.CodeAppNotFound},
		{"disabled app", "/app/key-off" + query, "", protocol.CodeAppDisabled},
		{"no protocol", "/app/key-1?client=js&version=8.4.0", "", protocol.CodeNoProtocolVersion},
		{"protocol 6", "/app/key-1?protocol=6", "", protocol.CodeUnsupportedProtocol},
		{"protocol not a number", "/app/key-1?protocol=seven", "", protocol.CodeUnsupportedProtocol},
		{"origin not allowed", "/app/key-origin" + query, "https://evil.example", protocol.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c := dial(t, e.hs, tt.path, h)
			c.expectClose(tt.code)
		})
	}
	t.Run("allowed origin", func(t *testing.T) {
		h := http.Header{"Origin": {"https://good.example"}}
		c := dial(t, e.hs, "/app/key-origin"+query, h)
		c.expect("pusher:connection_established")
	})
}

func TestMaxConnections(t *testing.T) {
	e := newEnv(t)
	first := connect(t, e.hs, "key-max")
	second := dial(t, e.hs, "/app/key-max"+query, nil)
	second.expectClose(protocol.CodeOverConnectionQuota)
	first.ping()
	// The slot is free again once the first one leaves.
	first.c.Close()
	e.waitMetric("herald_gateway_connections", 0)
	connect(t, e.hs, "key-max")
}

func TestPaths(t *testing.T) {
	e := newEnv(t, func(o *gateway.Options) { o.PathPrefix = "/ws/" })
	c := dial(t, e.hs, "/ws/app/key-1"+query, nil)
	c.expect("pusher:connection_established")
	for _, p := range []string{"/app/key-1", "/ws/apps/key-1", "/ws/app/", "/up"} {
		resp, err := http.Get(e.hs.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestPingPong(t *testing.T) {
	e := newEnv(t)
	c := connect(t, e.hs, "key-1")
	c.sendRaw(`{"event":"pusher:ping","data":{}}`)
	f := c.expect("pusher:pong")
	if f.raw != `{"event":"pusher:pong","data":"{}"}` {
		t.Errorf("pong = %s", f.raw)
	}
	// A WebSocket ping control frame is answered with a pong control frame.
	pong := make(chan string, 1)
	c.c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.ping() // reading processes the pong frame
	select {
	case s := <-pong:
		if s != "hi" {
			t.Errorf("pong payload %q", s)
		}
	default:
		t.Error("no pong control frame before pusher:pong")
	}
}

func TestServerPingsIdleClients(t *testing.T) {
	e := newEnv(t)
	t.Run("silent client is closed with 4201", func(t *testing.T) {
		c := connect(t, e.hs, "key-ping")
		c.expect("pusher:ping")
		c.expectClose(protocol.CodePongNotReceived)
	})
	t.Run("client that answers stays", func(t *testing.T) {
		c := connect(t, e.hs, "key-ping")
		for range 3 {
			c.expect("pusher:ping")
			c.sendRaw(`{"event":"pusher:pong","data":{}}`)
		}
		c.expect("pusher:ping")
		// A WebSocket ping counts as activity too.
		if err := c.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		c.expect("pusher:ping")
		c.ping()
	})
	t.Run("client that never finishes a frame is closed with 4201", func(t *testing.T) {
		c := connect(t, e.hs, "key-ping")
		// A masked text frame announcing 1,000 bytes, of which 10 come.
		frame := []byte{0x81, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4}
		frame = append(frame, []byte("0123456789")...)
		if _, err := c.c.NetConn().Write(frame); err != nil {
			t.Fatal(err)
		}
		c.expect("pusher:ping")
		c.expectClose(protocol.CodePongNotReceived)
	})
}

func TestPublicChannelEvent(t *testing.T) {
	e, app, c := newClientEnv(t)
	if got := c.subscribe(app, "news"); got != "{}" {
		t.Errorf("subscription_succeeded data %q, want {}", got)
	}
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "App\\Events\\Posted", Data: `{"title":"<hello> & \"you\""}`})
	f := c.expectEvent("App\\Events\\Posted", "news", `{"title":"<hello> & \"you\""}`)
	if f.UserID != nil {
		t.Errorf("channel event carries user_id: %s", f.raw)
	}
	// Channels with characters that need encoding in subjects.
	c.subscribe(app, "orders.42@shop;x=y")
	e.publish(events.Event{AppID: app.ID, Channel: "orders.42@shop;x=y", Name: "paid", Data: "plain text"})
	c.expectEvent("paid", "orders.42@shop;x=y", "plain text")
	// The session counts a subscription once its global join returns, which
	// can be after the client has its subscription_succeeded and events.
	e.waitMetric("herald_gateway_subscriptions", 2)
}

func TestUnsubscribe(t *testing.T) {
	e, app, c := newClientEnv(t)
	c.subscribe(app, "a")
	c.subscribe(app, "b")
	c.send("pusher:unsubscribe", "", map[string]string{"channel": "a"})
	c.ping()
	e.publish(events.Event{AppID: app.ID, Channel: "a", Name: "e", Data: "1"})
	e.publish(events.Event{AppID: app.ID, Channel: "b", Name: "e", Data: "2"})
	c.expectEvent("e", "b", "2")
	e.waitMetric("herald_gateway_subscriptions", 1)
}

func TestResubscribeDeliversOnce(t *testing.T) {
	e, app, c := newClientEnv(t)
	c.subscribe(app, "news")
	c.subscribe(app, "news")
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "1"})
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "2"})
	c.expectEvent("e", "news", "1")
	c.expectEvent("e", "news", "2")
}

func TestSubscriptionErrors(t *testing.T) {
	_, app, c := newClientEnv(t)
	tests := []struct {
		name    string
		channel string
		auth    string
		typ     string
		status  int
	}{
		{"invalid name", "bad channel!", "", "InvalidChannel", 400},
		{"too long", strings.Repeat("x", 201), "", "InvalidChannel", 400},
		{"private without auth", "private-a", "", "AuthError", 401},
		{"private with a bad signature", "private-a", app.Key + ":" + strings.Repeat("0", 64), "AuthError", 401},
		{"private signed by another app", "private-a", "key-rate:" + strings.Repeat("a", 64), "AuthError", 401},
		{"encrypted without auth", "private-encrypted-a", "", "AuthError", 401},
		{"presence without auth", "presence-a", "", "AuthError", 401},
		{"server-to-user before sign-in", "#server-to-user-1", "", "AuthError", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send("pusher:subscribe", "", map[string]string{"channel": tt.channel, "auth": tt.auth})
			f := c.expect("pusher:subscription_error")
			if f.Channel != tt.channel {
				t.Errorf("channel %q, want %q", f.Channel, tt.channel)
			}
			var d struct {
				Type   string `json:"type"`
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(f.Data, &d); err != nil {
				t.Fatalf("data %s: %v", f.Data, err)
			}
			if d.Type != tt.typ || d.Status != tt.status || d.Error == "" {
				t.Errorf("got %+v, want %s/%d with a message", d, tt.typ, tt.status)
			}
			c.ping() // still usable
		})
	}
}

func TestSubscriptionLimit(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-subs") // MaxSubscriptions 2
	c := connect(t, e.hs, "key-subs")
	c.subscribe(app, "one")
	c.subscribe(app, "private-two")
	c.subscribeFrame(app, "three", "", false)
	f := c.expect("pusher:subscription_error")
	var d struct {
		Type   string `json:"type"`
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil || f.Channel != "three" || d.Type != "LimitReached" || d.Status != 403 {
		t.Fatalf("got %s, want a LimitReached 403 subscription_error on three", f.raw)
	}
	// Subscribing again to a channel it holds is not a new subscription.
	c.subscribe(app, "one")
	// Events of the refused channel do not reach it; those of the others do.
	e.publish(events.Event{AppID: app.ID, Channel: "three", Name: "e", Data: "no"})
	e.publish(events.Event{AppID: app.ID, Channel: "one", Name: "e", Data: "yes"})
	c.expectEvent("e", "one", "yes")
	// Leaving one makes room.
	c.send("pusher:unsubscribe", "", map[string]string{"channel": "one"})
	c.subscribe(app, "three")
}

func TestPrivateChannels(t *testing.T) {
	e, app, c := newClientEnv(t)
	c.subscribe(app, "private-orders")
	e.publish(events.Event{AppID: app.ID, Channel: "private-orders", Name: "paid", Data: `{"id":1}`})
	c.expectEvent("paid", "private-orders", `{"id":1}`)

	// Encrypted channels relay the ciphertext untouched.
	c.subscribe(app, "private-encrypted-chat")
	sealed := `{"nonce":"bm9uY2U=","ciphertext":"c2VjcmV0"}`
	e.publish(events.Event{AppID: app.ID, Channel: "private-encrypted-chat", Name: "msg", Data: sealed})
	c.expectEvent("msg", "private-encrypted-chat", sealed)

	// A signature for another socket does not work.
	other := connect(t, e.hs, "key-1")
	other.send("pusher:subscribe", "", map[string]string{
		"channel": "private-orders",
		"auth":    signing.ChannelAuth(app.Key, app.Secret, c.socketID, "private-orders", ""),
	})
	other.expect("pusher:subscription_error")
}

func TestExcludedSocket(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	a := connect(t, e.hs, "key-1")
	b := connect(t, e.hs, "key-1")
	a.subscribe(app, "news")
	b.subscribe(app, "news")
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "1", ExcludeSocketID: a.socketID})
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "2"})
	a.expectEvent("e", "news", "2")
	b.expectEvent("e", "news", "1")
	b.expectEvent("e", "news", "2")
}

func TestClientEvents(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	a := connect(t, e.hs, "key-1")
	b := connect(t, e.hs, "key-1")
	for _, c := range []*client{a, b} {
		c.subscribe(app, "private-room")
		c.subscribe(app, "public")
		c.subscribe(app, "private-encrypted-room")
	}
	a.send("client-typing", "private-room", map[string]any{"name": "Ann"})
	f := b.expect("client-typing")
	if f.Channel != "private-room" {
		t.Errorf("channel %q", f.Channel)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(f.str(t)), &data); err != nil || data["name"] != "Ann" {
		t.Errorf("data %s (%v)", f.Data, err)
	}
	if f.UserID != nil {
		t.Errorf("private client event carries user_id: %s", f.raw)
	}

	refused := []struct {
		name, event, channel string
	}{
		{"public channel", "client-x", "public"},
		{"encrypted channel", "client-x", "private-encrypted-room"},
		{"not subscribed", "client-x", "private-elsewhere"},
		{"no channel", "client-x", ""},
		{"no client- prefix", "typing", "private-room"},
		{"name too long", "client-" + strings.Repeat("x", 200), "private-room"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			a.send(tt.event, tt.channel, "nope")
			if msg := a.expectError(0); msg == "" {
				t.Error("no message")
			}
		})
	}
	// None of the refused events reached b, and a never gets its own: the
	// next thing each sees is this event.
	a.send("client-done", "private-room", "ok")
	b.expectEvent("client-done", "private-room", `"ok"`)
	b.send("client-ack", "private-room", "ack")
	a.expectEvent("client-ack", "private-room", `"ack"`)
	e.waitMetric("herald_gateway_client_events_total", 3)
}

func TestClientEventRateLimit(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-rate")
	a := connect(t, e.hs, "key-rate")
	b := connect(t, e.hs, "key-rate")
	a.subscribe(app, "private-room")
	b.subscribe(app, "private-room")
	const sent = 5
	for i := range sent {
		a.send("client-n", "private-room", i)
	}
	limited := 0
	for _, f := range a.ping() {
		if f.Event != "pusher:error" {
			t.Fatalf("unexpected %s", f.raw)
		}
		if code, _ := f.errorData(t); code != protocol.CodeClientEventRateLimit {
			t.Fatalf("code %d, want 4301", code)
		}
		limited++
	}
	if limited == 0 {
		t.Fatal("no event was limited")
	}
	// b got exactly the events that were not limited, then the marker of a
	// third client (published after them by the same gateway).
	c := connect(t, e.hs, "key-rate")
	c.subscribe(app, "private-room")
	c.send("client-marker", "private-room", "m")
	a.expect("client-marker")
	got := 0
	for {
		f := b.read()
		if f.Event != "client-n" {
			break
		}
		got++
	}
	if got != sent-limited {
		t.Errorf("b got %d events, want %d", got, sent-limited)
	}
}

func TestPresence(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	const ch = "presence-room"
	join := func(c *client, channelData string) {
		t.Helper()
		c.subscribeFrame(app, ch, channelData, true)
	}

	a := connect(t, e.hs, "key-1")
	join(a, `{"user_id":"ann","user_info":{"name":"Ann"}}`)
	m := parseMembers(t, a.expectSucceeded(ch))
	if m.Presence.Count != 1 || len(m.Presence.IDs) != 1 || m.Presence.IDs[0] != "ann" ||
		string(m.Presence.Hash["ann"]) != `{"name":"Ann"}` {
		t.Errorf("first member list %+v", m.Presence)
	}

	b := connect(t, e.hs, "key-1")
	join(b, `{"user_id":7,"user_info":{"name":"Bob"}}`) // numeric id becomes "7"
	m = parseMembers(t, b.expectSucceeded(ch))
	if m.Presence.Count != 2 || string(m.Presence.Hash["7"]) != `{"name":"Bob"}` {
		t.Errorf("second member list %+v", m.Presence)
	}
	added := a.expect("pusher_internal:member_added")
	if added.Channel != ch || added.str(t) != `{"user_id":"7","user_info":{"name":"Bob"}}` {
		t.Errorf("member_added %s", added.raw)
	}

	// Bob's second connection adds no member and is not announced.
	b2 := connect(t, e.hs, "key-1")
	join(b2, `{"user_id":7,"user_info":{"name":"Bob"}}`)
	if m := parseMembers(t, b2.expectSucceeded(ch)); m.Presence.Count != 2 {
		t.Errorf("count with a second connection: %d", m.Presence.Count)
	}

	// The member limit (2) refuses a third user.
	c := connect(t, e.hs, "key-1")
	join(c, `{"user_id":"cat"}`)
	f := c.expect("pusher:subscription_error")
	if !strings.Contains(string(f.Data), `"LimitReached"`) || !strings.Contains(string(f.Data), "403") {
		t.Errorf("limit error %s", f.raw)
	}

	// Client events on presence channels carry the sender's user_id.
	b.send("client-wave", ch, "hi")
	w := a.expect("client-wave")
	if w.UserID == nil || *w.UserID != "7" {
		t.Errorf("client event on presence lacks user_id 7: %s", w.raw)
	}
	b2.expect("client-wave") // Bob's other connection gets it too

	// Bob leaves only when his last connection does.
	b.send("pusher:unsubscribe", "", map[string]string{"channel": ch})
	b.ping()
	b2.c.Close()
	removed := a.expect("pusher_internal:member_removed")
	if removed.str(t) != `{"user_id":"7"}` {
		t.Errorf("member_removed %s", removed.raw)
	}
	if before := a.ping(); len(before) != 0 {
		t.Errorf("more frames: %v", before)
	}
	// Now there is room for the third user.
	join(c, `{"user_id":"cat"}`)
	c.expectSucceeded(ch)
	a.expect("pusher_internal:member_added")
}

func TestPresenceChannelDataErrors(t *testing.T) {
	_, app, c := newClientEnv(t)
	tests := []struct {
		name, data, typ string
	}{
		{"not JSON", `nope`, "AuthError"},
		{"no user_id", `{"user_info":{}}`, "AuthError"},
		{"user_id object", `{"user_id":{}}`, "AuthError"},
		{"user_id too long", `{"user_id":"` + strings.Repeat("u", 129) + `"}`, "LimitReached"},
		{"user_info too large", `{"user_id":"u","user_info":"` + strings.Repeat("i", 1100) + `"}`, "LimitReached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.subscribeFrame(app, "presence-x", tt.data, true)
			f := c.expect("pusher:subscription_error")
			if !strings.Contains(string(f.Data), `"`+tt.typ+`"`) {
				t.Errorf("got %s, want %s", f.raw, tt.typ)
			}
		})
	}
}

func TestTwoGateways(t *testing.T) {
	e := newEnv(t)
	_, hs2, _ := e.startGateway()
	app := e.app("app-1")
	a := connect(t, e.hs, "key-1")
	b := connect(t, hs2, "key-1")
	if a.socketID[:strings.IndexByte(a.socketID, '.')] == b.socketID[:strings.IndexByte(b.socketID, '.')] {
		t.Errorf("both gateways use the socket id prefix of %s", a.socketID)
	}
	a.subscribe(app, "private-room")
	b.subscribe(app, "private-room")

	a.send("client-hello", "private-room", map[string]int{"n": 1})
	b.expectEvent("client-hello", "private-room", `{"n":1}`)
	b.send("client-back", "private-room", 2)
	a.expectEvent("client-back", "private-room", "2")

	e.publish(events.Event{AppID: app.ID, Channel: "private-room", Name: "e", Data: "1"})
	e.publish(events.Event{AppID: app.ID, Channel: "private-room", Name: "e", Data: "2", ExcludeSocketID: b.socketID})
	e.publish(events.Event{AppID: app.ID, Channel: "private-room", Name: "e", Data: "3"})
	for _, want := range []string{"1", "2", "3"} {
		a.expectEvent("e", "private-room", want)
	}
	for _, want := range []string{"1", "3"} {
		b.expectEvent("e", "private-room", want)
	}
}

func TestMalformedFrames(t *testing.T) {
	e, app, c := newClientEnv(t)
	bystander := connect(t, e.hs, "key-1")
	c.subscribe(app, "news")
	bystander.subscribe(app, "news")
	frames := []struct{ name, frame string }{
		{"not JSON", `hello`},
		{"JSON array", `[1,2]`},
		{"no event", `{"data":{}}`},
		{"event not a string", `{"event":5}`},
		{"channel not a string", `{"event":"client-x","channel":7}`},
		{"unknown pusher event", `{"event":"pusher:dance","data":{}}`},
		{"pusher_internal from a client", `{"event":"pusher_internal:member_added","data":{}}`},
		{"subscribe data not an object", `{"event":"pusher:subscribe","data":5}`},
		{"subscribe without data", `{"event":"pusher:subscribe"}`},
		{"unsubscribe data wrong", `{"event":"pusher:unsubscribe","data":[]}`},
	}
	for _, tt := range frames {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw(tt.frame)
			c.expectError(protocol.CodeGenericReconnect)
		})
	}
	// Still subscribed and usable, and the other client saw nothing odd.
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "1"})
	c.expectEvent("e", "news", "1")
	bystander.expectEvent("e", "news", "1")
	// The budget is spent: one more bad frame closes the connection.
	c.sendRaw(`nope`)
	c.expectClose(protocol.CodeGenericReconnect)
	bystander.ping()
}

// Frames the Pusher protocol cannot carry close the connection with the
// WebSocket codes of RFC 6455, and only that connection.
func TestFramesOutsideTheProtocol(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	bystander := connect(t, e.hs, "key-1")
	bystander.subscribe(app, "private-room")
	tests := []struct {
		name string
		op   int
		data []byte
		code int
	}{
		{"binary", websocket.BinaryMessage, []byte(`{"event":"pusher:ping","data":{}}`), websocket.CloseUnsupportedData},
		{"invalid UTF-8", websocket.TextMessage, []byte("{\"event\":\"client-x\",\"channel\":\"private-room\",\"data\":\"\xff\xfe\"}"), websocket.CloseInvalidFramePayloadData},
		{"truncated rune", websocket.TextMessage, []byte("{\"event\":\"pusher:ping\",\"data\":\"\xc3\"}"), websocket.CloseInvalidFramePayloadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, e.hs, "key-1")
			c.subscribe(app, "private-room")
			if err := c.c.WriteMessage(tt.op, tt.data); err != nil {
				t.Fatal(err)
			}
			c.expectClosed(tt.code)
		})
	}
	// Valid UTF-8 beyond ASCII is fine.
	c := connect(t, e.hs, "key-1")
	c.subscribe(app, "private-room")
	c.send("client-é", "private-room", map[string]string{"text": "naïve ☃"})
	if f := bystander.expect("client-é"); !strings.Contains(f.raw, "naïve ☃") {
		t.Fatalf("client event lost its text: %s", f.raw)
	}
	bystander.ping()
}

func TestOversizedFrames(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1") // MaxMessageSize 2000
	t.Run("dropped, connection stays", func(t *testing.T) {
		c := connect(t, e.hs, "key-1")
		c.subscribe(app, "private-room")
		c.send("client-big", "private-room", strings.Repeat("x", 3000))
		c.expectError(protocol.CodeMessageTooLarge)
		c.ping()
	})
	t.Run("over the hard cap closes", func(t *testing.T) {
		c := connect(t, e.hs, "key-1")
		c.sendRaw(strings.Repeat("x", 200_000))
		c.expectClose(protocol.CodeMessageTooLarge)
	})
	t.Run("repeated oversize closes", func(t *testing.T) {
		c := connect(t, e.hs, "key-1")
		for range 10 {
			c.sendRaw(strings.Repeat("y", 2500))
			c.expectError(protocol.CodeMessageTooLarge)
		}
		c.sendRaw(strings.Repeat("y", 2500))
		c.expectClose(protocol.CodeMessageTooLarge)
	})
}

func TestFrameSizes(t *testing.T) {
	e, app, c := newClientEnv(t)
	c.subscribe(app, "big")
	// 7-bit, 16-bit and 64-bit WebSocket payload lengths. Published on the
	// live subject directly: the stream's own size limit is not under test.
	for _, n := range []int{10, 125, 126, 65535, 70_000} {
		data := strings.Repeat("d", n)
		m := nats.NewMsg(names.LiveSubject(app.ID, "big"))
		m.Header.Set(names.HeaderEvent, "sized")
		m.Data = []byte(data)
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		c.expectEvent("sized", "big", data)
	}
}

func TestSlowConsumer(t *testing.T) {
	e := newEnv(t, func(o *gateway.Options) {
		o.WriteQueueBytes = 256 << 10
		o.WriteTimeout = 30 * time.Second
	})
	app := e.app("app-1")
	// slow has a small receive buffer and never reads until the gateway has
	// given up on it.
	slow := connectSmallBuffer(t, e.hs, "key-1")
	fast := connect(t, e.hs, "key-1")
	slow.subscribe(app, "firehose")
	fast.subscribe(app, "firehose")

	// The fast client reads everything, in the background.
	var fastRead atomic.Int64
	fastErr := make(chan string, 1)
	go func() {
		for {
			_ = fast.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := fast.c.ReadMessage()
			switch {
			case err != nil:
				fastErr <- err.Error()
				return
			case strings.Contains(string(b), `"end"`):
				fastErr <- ""
				return
			case !strings.Contains(string(b), `"fill"`):
				fastErr <- "unexpected " + string(b)
				return
			}
			fastRead.Add(1)
		}
	}()
	publish := func(event string, data []byte) {
		m := nats.NewMsg(names.LiveSubject(app.ID, "firehose"))
		m.Header.Set(names.HeaderEvent, event)
		m.Data = data
		if err := e.nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	payload := []byte(strings.Repeat("p", 8000))
	published := int64(0)
	eventually(t, "the slow consumer to be closed", func() bool {
		// Bursts well under the queue bound, each read by the fast client
		// before the next.
		for range 5 {
			publish("fill", payload)
			published++
		}
		eventually(t, "the fast client to keep up", func() bool { return fastRead.Load() == published })
		return metric(t, e.reg, "herald_gateway_slow_consumer_closes_total") >= 1
	})
	publish("end", nil)
	if msg := <-fastErr; msg != "" {
		t.Fatalf("fast client: %s", msg)
	}
	for {
		f := slow.read()
		if f.Event == "fill" {
			continue
		}
		if f.Event != "pusher:error" {
			t.Fatalf("unexpected %s", f.raw)
		}
		if code, _ := f.errorData(t); code != protocol.CodeOverCapacity {
			t.Fatalf("error code %d, want 4100", code)
		}
		break
	}
	slow.expectClosed(protocol.CodeOverCapacity)
	fast.ping()
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	var clients []*client
	for range 5 {
		c := connect(t, e.hs, "key-1")
		c.subscribe(app, "news")
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.gw.Shutdown(ctx) }()
	for _, c := range clients {
		c.expectClose(protocol.CodeGenericReconnect)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL(e.hs, "/app/key-1"+query), nil); err == nil {
		t.Fatal("a draining gateway accepted a connection")
	} else if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial during drain: %v", err)
	}
	e.wantMetric("herald_gateway_connections", 0)
}

func TestMetricsCountMessages(t *testing.T) {
	e, app, c := newClientEnv(t)
	c.subscribe(app, "news")
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "1"})
	c.expect("e")
	// connection_established, subscription_succeeded, the event.
	e.waitMetric("herald_gateway_messages_sent_total", 3)
	e.wantMetric("herald_gateway_connections_total", 1)
}

// A connection that holds no channel for the app's subscribe_timeout is
// closed with 4202; one that subscribed is not, until it leaves its last
// channel and stays without one for as long.
func TestConnectionsWithoutChannelsAreClosed(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-idle") // SubscribeTimeout 300 ms
	idle := connect(t, e.hs, "key-idle")
	busy := connect(t, e.hs, "key-idle")
	busy.subscribe(app, "news")
	idle.expectClose(protocol.CodeClosedAfterIdle)
	busy.ping() // open, well past the timeout
	busy.send("pusher:unsubscribe", "", map[string]string{"channel": "news"})
	busy.expectClose(protocol.CodeClosedAfterIdle)
}

// A client flooding pings (or subscribes) gets what the rate allows, then
// pusher:error 4301 for what it does not, then a close with 4301; another
// client of the gateway goes on as before.
func TestMessageFloodIsLimited(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-1")
	bystander := connect(t, e.hs, "key-1")
	bystander.subscribe(app, "news")
	flood := connect(t, e.hs, "key-1")
	const sent = 1000
	go func() {
		for range sent {
			if flood.c.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:ping","data":{}}`)) != nil {
				return
			}
		}
	}()
	pongs, refused := 0, 0
	for {
		f, err := flood.tryRead()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != protocol.CodeClientEventRateLimit {
				t.Fatalf("flood ended with %v after %d pongs, want close 4301", err, pongs)
			}
			break
		}
		switch f.Event {
		case "pusher:pong":
			pongs++
		case "pusher:error":
			if code, _ := f.errorData(t); code != protocol.CodeClientEventRateLimit {
				t.Fatalf("got %s", f.raw)
			}
			refused++
		default:
			t.Fatalf("unexpected %s", f.raw)
		}
	}
	if pongs == 0 || pongs >= sent || refused == 0 {
		t.Fatalf("%d pongs and %d refusals for %d pings", pongs, refused, sent)
	}
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "e", Data: "1"})
	bystander.expectEvent("e", "news", "1")
	bystander.ping()
}

// REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=none (or a rate of 0): every client
// event is refused with Reverb's 4301, and none is relayed.
func TestClientEventsOff(t *testing.T) {
	e := newEnv(t)
	app := e.app("app-quiet")
	a := connect(t, e.hs, "key-quiet")
	b := connect(t, e.hs, "key-quiet")
	for _, c := range []*client{a, b} {
		c.subscribe(app, "private-room")
	}
	a.send("client-typing", "private-room", map[string]any{"name": "Ann"})
	if msg := a.expectError(protocol.CodeClientEventRateLimit); !strings.Contains(msg, "client messaging") {
		t.Errorf("refusal %q", msg)
	}
	// b got nothing: its next frame is the pong.
	if before := b.ping(); len(before) != 0 {
		t.Errorf("b got %s", before[0].raw)
	}
	e.wantMetric("herald_gateway_client_events_total", 0)
}
