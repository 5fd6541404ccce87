package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/process/processtest"
	"github.com/herald-ws/herald/shared/signing"
)

func waitUp(t *testing.T, base string) {
	t.Helper()
	processtest.WaitReady(t, base)
}

type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

func readFrame(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f frame
	if err := c.ReadJSON(&f); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return f
}

// The all-in-one process serves the WebSocket and the HTTP API on one port
// under REVERB_SERVER_PATH, and a SIGTERM-style stop tells clients 4200.
func TestOnePortServesWebSocketAndAPI(t *testing.T) {
	setShopApp(t)
	t.Setenv("REVERB_SERVER_PATH", "/ws")
	base, stop := startProgram(t)

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/app/shop-key?protocol=7&client=js&version=8.4.0&flash=false", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	if f := readFrame(t, ws); f.Event != "pusher:connection_established" {
		t.Fatalf("first frame %+v", f)
	}
	if err := ws.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "orders"}}); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, ws); f.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("subscribe answer %+v", f)
	}

	body := []byte(`{"name":"progress","channel":"orders","data":"{\"pct\":50}"}`)
	q := signing.SignRequest("POST", "/ws/apps/shop/events", nil, body, "shop-key", "0123456789abcdef0123", time.Now())
	resp, err := http.Post(base+"/ws/apps/shop/events?"+q, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trigger: %d %s", resp.StatusCode, b)
	}
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
