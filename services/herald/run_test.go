package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/process/processtest"
)

func waitUp(t *testing.T, base string) {
	t.Helper()
	processtest.WaitReady(t, base)
}

// frame is a Pusher frame, its data raw; position is set on the frames of
// a positioned subscription.
type frame struct {
	Event    string          `json:"event"`
	Channel  string          `json:"channel"`
	Data     json.RawMessage `json:"data"`
	Position string          `json:"position"`
}

func readFrame(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var f frame
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// dataString decodes data that is a JSON string.
func dataString(t *testing.T, f frame) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(f.Data, &s); err != nil {
		t.Fatalf("data of %s: %s", f.Event, f.Data)
	}
	return s
}

// dial connects to url (ws://…/app/KEY), closed when the test ends, and
// reads connection_established; it returns the connection and its socket
// id.
func dial(t *testing.T, url string) (*websocket.Conn, string) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url+"?protocol=7&client=js&version=8.4.0&flash=false", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	f := readFrame(t, ws)
	var d struct {
		SocketID string `json:"socket_id"`
	}
	if f.Event != "pusher:connection_established" || json.Unmarshal([]byte(dataString(t, f)), &d) != nil {
		t.Fatalf("first frame %+v", f)
	}
	return ws, d.SocketID
}

// subscribeWith sends pusher:subscribe with data and returns the answer,
// which must be subscription_succeeded.
func subscribeWith(t *testing.T, ws *websocket.Conn, data map[string]any) frame {
	t.Helper()
	if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": data}); err != nil {
		t.Fatal(err)
	}
	f := readFrame(t, ws)
	if f.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("subscribe answer %+v", f)
	}
	return f
}

// The all-in-one process serves the WebSocket and the HTTP API on one port
// under REVERB_SERVER_PATH, and a SIGTERM-style stop tells clients 4200.
func TestOnePortServesWebSocketAndAPI(t *testing.T) {
	setShopApp(t)
	t.Setenv("REVERB_SERVER_PATH", "/ws")
	base, stop := startProgram(t)

	ws := subscribe(t, "ws"+strings.TrimPrefix(base, "http")+"/ws/app/"+replayAppKey, "orders")
	callAPI(t, base, http.MethodPost, "/ws/apps/shop/events", nil, `{"name":"progress","channel":"orders","data":"{\"pct\":50}"}`)
	f := readFrame(t, ws)
	var data string
	if f.Event != "progress" || f.Channel != "orders" || json.Unmarshal(f.Data, &data) != nil || data != `{"pct":50}` {
		t.Fatalf("event frame %+v", f)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4200 {
			t.Fatalf("shutdown closed with %v, want 4200", err)
		}
		break
	}
	if err := <-stopped; err != nil && !strings.Contains(err.Error(), "context") {
		t.Fatalf("run returned %v", err)
	}
}
