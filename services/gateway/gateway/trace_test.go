package gateway_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/logging/logtest"
)

func withLogger(level slog.Level, buf *logtest.Buffer, set func(*gateway.Options)) func(*gateway.Options) {
	return func(o *gateway.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
		if set != nil {
			set(o)
		}
	}
}

func TestDebugLogShowsTraffic(t *testing.T) {
	var logs logtest.Buffer
	e := newEnv(t, withLogger(slog.LevelDebug, &logs, nil))
	app := e.app("app-1")
	a := connect(t, e.hs, "key-1")
	b := connect(t, e.hs, "key-1")
	a.subscribe(app, "private-orders")
	b.subscribe(app, "private-orders")
	e.publish(events.Event{AppID: app.ID, Channel: "private-orders", Name: "OrderShipped", Data: `{"secret":"s3cr3t"}`})
	a.expectEvent("OrderShipped", "private-orders", `{"secret":"s3cr3t"}`)
	b.expectEvent("OrderShipped", "private-orders", `{"secret":"s3cr3t"}`)
	a.send("client-typing", "private-orders", map[string]any{"who": "hidden-name"})
	b.expect("client-typing")
	a.send("pusher:unsubscribe", "", map[string]any{"channel": "private-orders"})
	a.ping()

	for _, c := range []struct {
		msg  string
		want map[string]any
	}{
		{"connected", map[string]any{"app_id": "app-1", "socket_id": a.socketID}},
		{"subscribed", map[string]any{"app_id": "app-1", "socket_id": a.socketID, "channel": "private-orders"}},
		{"event delivered", map[string]any{"app_id": "app-1", "socket_id": a.socketID, "channel": "private-orders",
			"event": "OrderShipped", "bytes": float64(len(`{"secret":"s3cr3t"}`))}},
		{"event delivered", map[string]any{"app_id": "app-1", "socket_id": b.socketID, "channel": "private-orders", "event": "OrderShipped"}},
		{"client event", map[string]any{"app_id": "app-1", "socket_id": a.socketID, "channel": "private-orders", "event": "client-typing"}},
		{"event delivered", map[string]any{"app_id": "app-1", "socket_id": b.socketID, "channel": "private-orders", "event": "client-typing"}},
		{"unsubscribed", map[string]any{"app_id": "app-1", "socket_id": a.socketID, "channel": "private-orders"}},
	} {
		eventually(t, c.msg+" line", func() bool { return logs.Find(t, c.msg, c.want) != nil })
	}
	// The sender of a client event does not get it back.
	if rec := logs.Find(t, "event delivered", map[string]any{"socket_id": a.socketID, "event": "client-typing"}); rec != nil {
		t.Errorf("client event logged as delivered to its sender: %v", rec)
	}
	a.c.Close()
	eventually(t, "disconnected line", func() bool {
		return logs.Find(t, "disconnected", map[string]any{"socket_id": a.socketID}) != nil
	})
	// Refusals: a key Herald does not know (4001), and a request whose
	// Upgrade header a proxy dropped.
	bad := dial(t, e.hs, "/app/not-a-key"+query, nil)
	bad.expectClose(4001)
	eventually(t, "connection refused line", func() bool {
		return logs.Find(t, "connection refused", map[string]any{"key": "not-a-key", "code": float64(4001)}) != nil
	})
	res, err := http.Get(e.hs.URL + "/app/key-1" + query)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	eventually(t, "upgrade refused line", func() bool {
		return logs.Find(t, "websocket upgrade refused", map[string]any{"status": float64(http.StatusBadRequest)}) != nil
	})
	all := logs.String()
	for _, secret := range []string{"s3cr3t", "hidden-name", app.Secret} {
		if strings.Contains(all, secret) {
			t.Errorf("debug log shows %q without HERALD_LOG_PAYLOADS", secret)
		}
	}
}

func TestLogPayloads(t *testing.T) {
	var logs logtest.Buffer
	e := newEnv(t, withLogger(slog.LevelDebug, &logs, func(o *gateway.Options) { o.LogPayloads = true }))
	app := e.app("app-1")
	a := connect(t, e.hs, "key-1")
	a.subscribe(app, "news")
	e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "Posted", Data: `{"title":"hi"}`})
	a.expectEvent("Posted", "news", `{"title":"hi"}`)
	eventually(t, "delivered line with data", func() bool {
		return logs.Find(t, "event delivered", map[string]any{"socket_id": a.socketID, "data": `{"title":"hi"}`}) != nil
	})
}

func TestInfoLevelLogsNoTraffic(t *testing.T) {
	for _, tc := range []struct {
		name        string
		connections bool
	}{{"quiet", false}, {"connections", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logtest.Buffer
			e := newEnv(t, withLogger(slog.LevelInfo, &logs, func(o *gateway.Options) { o.LogConnections = tc.connections }))
			app := e.app("app-1")
			a := connect(t, e.hs, "key-1")
			a.subscribe(app, "news")
			e.publish(events.Event{AppID: app.ID, Channel: "news", Name: "Posted", Data: "x"})
			a.expectEvent("Posted", "news", "x")
			a.c.Close()
			if tc.connections {
				eventually(t, "disconnected line", func() bool {
					return logs.Find(t, "disconnected", map[string]any{"socket_id": a.socketID, "level": "INFO"}) != nil
				})
				if logs.Find(t, "connected", map[string]any{"socket_id": a.socketID, "level": "INFO"}) == nil {
					t.Error("no connected line with HERALD_LOG_CONNECTIONS")
				}
			}
			for _, msg := range []string{"subscribed", "event delivered"} {
				if n := len(logs.Records(t, msg)); n > 0 {
					t.Errorf("%d %q lines at info level", n, msg)
				}
			}
			if !tc.connections && len(logs.Records(t, "connected")) > 0 {
				t.Error("connected lines at info level without HERALD_LOG_CONNECTIONS")
			}
		})
	}
}
