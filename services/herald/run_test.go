package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/natstest"
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
	port := natstest.FreePort(t)
	t.Setenv("REVERB_APP_ID", "shop")
	t.Setenv("REVERB_APP_KEY", "shop-key")
	t.Setenv("REVERB_APP_SECRET", "0123456789abcdef0123")
	t.Setenv("REVERB_SERVER_HOST", "127.0.0.1")
	t.Setenv("REVERB_SERVER_PORT", strconv.Itoa(port))
	t.Setenv("REVERB_SERVER_PATH", "/ws")
	t.Setenv("HERALD_DATA_DIR", t.TempDir())
	t.Setenv("HERALD_LOG_LEVEL", "warn")

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- program.Run(ctx, io.Discard, io.Discard) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUp(t, base)

	ws, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws/app/shop-key?protocol=7&client=js&version=8.4.0&flash=false", port), nil)
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

	stop()
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
	if err := <-done; err != nil && !strings.Contains(err.Error(), "context") {
		t.Fatalf("run returned %v", err)
	}
	done <- nil
}
