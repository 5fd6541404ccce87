package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/gateway/gatewaytest"
	"github.com/herald-ws/herald/services/presence/presencetest"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/metricstest"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Test apps. Each key names the app's purpose.
var testApps = []appconf.App{
	{ID: "app-1", Key: "key-1", Secret: "secret-of-app-one-0001", ClientEventsPerSecond: 1000,
		MaxMessageSize: 2000, MaxPresenceMembers: 2, ActivityTimeout: appconf.Duration(45 * time.Second)},
	{ID: "app-origin", Key: "key-origin", Secret: "secret-of-app-origin-01", AllowedOrigins: []string{"https://good.example"}},
	{ID: "app-off", Key: "key-off", Secret: "secret-of-app-off-00001", Disabled: true},
	{ID: "app-max", Key: "key-max", Secret: "secret-of-app-max-00001", MaxConnections: 1},
	{ID: "app-ping", Key: "key-ping", Secret: "secret-of-app-ping-0001", PingInterval: appconf.Duration(100 * time.Millisecond)},
	{ID: "app-rate", Key: "key-rate", Secret: "secret-of-app-rate-0001", ClientEventsPerSecond: 1},
	{ID: "app-count", Key: "key-count", Secret: "secret-of-app-count-001", SubscriptionCount: true},
	{ID: "app-quiet", Key: "key-quiet", Secret: "secret-of-app-quiet-001", AcceptClientEventsFrom: appconf.ClientEventsFromNone},
	{ID: "app-subs", Key: "key-subs", Secret: "secret-of-app-subs-0001", MaxSubscriptions: 2},
	{ID: "app-idle", Key: "key-idle", Secret: "secret-of-app-idle-0001", SubscribeTimeout: appconf.Duration(300 * time.Millisecond)},
}

// env is one NATS server with JetStream and a gateway behind an HTTP server.
type env struct {
	t    testing.TB
	srv  *server.Server
	nc   *nats.Conn // the test's own connection, for publishing
	js   jetstream.JetStream
	apps *appconf.Registry
	gw   *gateway.Gateway
	hs   *httptest.Server
	reg  *prometheus.Registry
	// presence is the presence service in this process (presence_test.go).
	presence *presencetest.Service
}

func newEnv(t testing.TB, opts ...func(*gateway.Options)) *env {
	t.Helper()
	return newEnvOf(t, testApps, opts...)
}

// newEnvOf is newEnv serving apps.
func newEnvOf(t testing.TB, served []appconf.App, opts ...func(*gateway.Options)) *env {
	t.Helper()
	srv := natstest.Start(t)
	apps, err := appconf.NewRegistry(served)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, apps: apps}
	e.nc = natstest.Connect(t, srv)
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	e.startPresence() // presence_test.go
	e.gw, e.hs, e.reg = e.startGateway(opts...)
	return e
}

// newClientEnv is newEnv with one client connected to app-1, the start of
// most tests.
func newClientEnv(t testing.TB, opts ...func(*gateway.Options)) (*env, *appconf.App, *client) {
	t.Helper()
	e := newEnv(t, opts...)
	return e, e.app("app-1"), connect(t, e.hs, "key-1")
}

// mortalGateway starts another gateway on a NATS connection of its own, nc,
// with a 1 s heartbeat TTL: closing nc kills it as a crash would.
func (e *env) mortalGateway() (*httptest.Server, *nats.Conn) {
	e.t.Helper()
	nc := natstest.Connect(e.t, e.srv)
	_, hs, _ := e.startGateway(func(o *gateway.Options) {
		o.NC = nc
		o.GatewayTTL = time.Second
	})
	return hs, nc
}

// startGateway runs one more gateway on the env's NATS server.
func (e *env) startGateway(opts ...func(*gateway.Options)) (*gateway.Gateway, *httptest.Server, *prometheus.Registry) {
	t := e.t
	t.Helper()
	reg := prometheus.NewRegistry()
	opt := gateway.Options{
		Apps:          e.apps,
		NC:            natstest.Connect(t, e.srv),
		Metrics:       reg,
		ChannelLinger: 200 * time.Millisecond,
		PongTimeout:   200 * time.Millisecond,
	}
	for _, o := range opts {
		o(&opt)
	}
	gw, hs := gatewaytest.Start(t, opt)
	return gw, hs, reg
}

func (e *env) app(id string) *appconf.App {
	a, ok := e.apps.ByID(id)
	if !ok {
		e.t.Fatalf("no app %s", id)
	}
	return a
}

// publish stores a channel event in the app's stream, as the trigger API does.
func (e *env) publish(ev events.Event) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), poll.Patience)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, ev.Msg()); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// metric returns the value of a counter or gauge, summed over its series.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metricstest.Value(t, reg, name, nil)
}

// wantMetric checks that the gateway's counter or gauge name (summed over
// its series) is want now.
func (e *env) wantMetric(name string, want float64) {
	e.t.Helper()
	if got := metric(e.t, e.reg, name); got != want {
		e.t.Errorf("%s = %v, want %v", name, got, want)
	}
}

// waitMetric waits until the gateway's counter or gauge name (summed over
// its series) is want.
func (e *env) waitMetric(name string, want float64) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("%s = %v", name, want), func() bool { return metric(e.t, e.reg, name) == want })
}

// eventually polls cond until it holds, or fails after poll.Patience.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, poll.Patience, what, cond)
}

// client is a WebSocket client speaking raw Pusher frames.
type client struct {
	t        testing.TB
	c        *websocket.Conn
	socketID string
}

type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  *string         `json:"user_id"`
	raw     string
}

// str decodes data that is a JSON string.
func (f frame) str(t testing.TB) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(f.Data, &s); err != nil {
		t.Fatalf("data of %s is not a string: %s", f.Event, f.Data)
	}
	return s
}

// errorData decodes pusher:error data: code (0 for null) and message.
func (f frame) errorData(t testing.TB) (int, string) {
	t.Helper()
	var d struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("pusher:error data %s: %v", f.Data, err)
	}
	if d.Code == nil {
		return 0, d.Message
	}
	return *d.Code, d.Message
}

func wsURL(hs *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(hs.URL, "http") + path
}

// dial opens a connection without reading anything.
func dial(t testing.TB, hs *httptest.Server, path string, header http.Header) *client {
	t.Helper()
	return dialWith(t, websocket.DefaultDialer, hs, path, header)
}

func dialWith(t testing.TB, d *websocket.Dialer, hs *httptest.Server, path string, header http.Header) *client {
	t.Helper()
	c, resp, err := d.Dial(wsURL(hs, path), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

// connectSmallBuffer connects with a 64 KiB socket receive buffer, so that a
// client that does not read fills up quickly.
func connectSmallBuffer(t testing.TB, hs *httptest.Server, key string) *client {
	t.Helper()
	d := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}}
	return dialWith(t, d, hs, "/app/"+key+query, nil).established()
}

const query = "?protocol=7&client=js&version=8.4.0&flash=false"

// connect opens a connection to app key and reads connection_established.
func connect(t testing.TB, hs *httptest.Server, key string) *client {
	t.Helper()
	return dial(t, hs, "/app/"+key+query, nil).established()
}

// established reads connection_established and keeps its socket id.
func (c *client) established() *client {
	c.t.Helper()
	f := c.expect("pusher:connection_established")
	var d struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal([]byte(f.str(c.t)), &d); err != nil {
		c.t.Fatal(err)
	}
	c.socketID = d.SocketID
	return c
}

func (c *client) read() frame {
	c.t.Helper()
	f, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *client) tryRead() (frame, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(poll.Patience))
	_, b, err := c.c.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("frame is not JSON: %q", b)
	}
	f.raw = string(b)
	return f, nil
}

// expect reads the next frame and checks its event.
func (c *client) expect(event string) frame {
	c.t.Helper()
	f := c.read()
	if f.Event != event {
		c.t.Fatalf("got %s, want %s", f.raw, event)
	}
	return f
}

// expectError reads a pusher:error with code (0 for null).
func (c *client) expectError(code int) string {
	c.t.Helper()
	f := c.expect("pusher:error")
	got, msg := f.errorData(c.t)
	if got != code {
		c.t.Fatalf("pusher:error code %d (%s), want %d", got, msg, code)
	}
	return msg
}

// expectClose reads pusher:error with code, then a close frame with code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	c.expectError(code)
	c.expectClosed(code)
}

// expectClosed reads until the connection closes and checks the close code.
func (c *client) expectClosed(code int) {
	c.t.Helper()
	for {
		_, err := c.tryRead()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close %d", err, code)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d (%s), want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(event, channel string, data any) {
	c.t.Helper()
	m := map[string]any{"event": event, "data": data}
	if channel != "" {
		m["channel"] = channel
	}
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// ping checks that the connection is usable: pusher:ping gets pusher:pong.
// Frames already queued before the pong are returned.
func (c *client) ping() []frame {
	c.t.Helper()
	c.sendRaw(`{"event":"pusher:ping","data":{}}`)
	var before []frame
	for {
		f := c.read()
		if f.Event == "pusher:pong" {
			return before
		}
		before = append(before, f)
	}
}

// subscribeFrame sends pusher:subscribe, signing it for app when sign is set.
func (c *client) subscribeFrame(app *appconf.App, channel, channelData string, sign bool) {
	c.t.Helper()
	d := map[string]any{"channel": channel}
	if sign {
		d["auth"] = signing.ChannelAuth(app.Key, app.Secret, c.socketID, channel, channelData)
	}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	c.send("pusher:subscribe", "", d)
}

// subscribe subscribes (signed for private and presence channels) and
// returns the data of subscription_succeeded.
func (c *client) subscribe(app *appconf.App, channel string) string {
	c.t.Helper()
	sign := strings.HasPrefix(channel, "private-") || strings.HasPrefix(channel, "presence-")
	c.subscribeFrame(app, channel, "", sign)
	return c.expectSucceeded(channel)
}

func (c *client) expectSucceeded(channel string) string {
	c.t.Helper()
	f := c.expect("pusher_internal:subscription_succeeded")
	if f.Channel != channel {
		c.t.Fatalf("succeeded for %q, want %q", f.Channel, channel)
	}
	return f.str(c.t)
}

// expectEvent reads a channel event and checks event, channel and data.
func (c *client) expectEvent(event, channel, data string) frame {
	c.t.Helper()
	f := c.expect(event)
	if f.Channel != channel {
		c.t.Fatalf("%s on channel %q, want %q", event, f.Channel, channel)
	}
	if got := f.str(c.t); got != data {
		c.t.Fatalf("%s data %q, want %q", event, got, data)
	}
	return f
}
