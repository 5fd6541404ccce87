package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/signing"
)

const (
	replayAppKey    = "shop-key"
	replayAppSecret = "0123456789abcdef0123"
)

// startHerald runs the all-in-one process for one app and returns its base
// URL.
func startHerald(t *testing.T) string {
	t.Helper()
	setShopApp(t)
	return runHerald(t)
}

// setShopApp sets startHerald's one app in the environment.
func setShopApp(t *testing.T) {
	t.Setenv("REVERB_APP_ID", "shop")
	t.Setenv("REVERB_APP_KEY", replayAppKey)
	t.Setenv("REVERB_APP_SECRET", replayAppSecret)
}

// runHerald runs the all-in-one process with the app settings of the
// environment, on a free loopback port, until the test ends, and returns its
// base URL once it is ready.
func runHerald(t *testing.T) string {
	t.Helper()
	base, stop := startProgram(t)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return base
}

// startProgram is runHerald's process with a stop of the test's own: stop
// ends it and returns what it returned (nil when called again). The end of
// the test stops it too.
func startProgram(t *testing.T) (base string, stop func() error) {
	t.Helper()
	port := natstest.FreePort(t)
	t.Setenv("REVERB_SERVER_HOST", "127.0.0.1")
	t.Setenv("REVERB_SERVER_PORT", strconv.Itoa(port))
	t.Setenv("HERALD_DATA_DIR", t.TempDir())
	t.Setenv("HERALD_LOG_LEVEL", "warn")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- program.Run(ctx, io.Discard, io.Discard) }()
	var once sync.Once
	stop = func() error {
		var err error
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUp(t, base)
	return base, stop
}

// callAPI calls the HTTP API, signed.
func callAPI(t *testing.T, base, method, path string, params url.Values, body string) map[string]any {
	t.Helper()
	q := signing.SignRequest(method, path, params, []byte(body), replayAppKey, replayAppSecret, time.Now())
	req, err := http.NewRequest(method, base+path+"?"+q, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func trigger(t *testing.T, base, channel, data string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": "e", "channel": channel, "data": data})
	callAPI(t, base, http.MethodPost, "/apps/shop/events", nil, string(body))
}

// dialHerald connects and returns the connection and its socket id.
func dialHerald(t *testing.T, base string) (*websocket.Conn, string) {
	t.Helper()
	return dial(t, "ws"+base[len("http"):]+"/app/"+replayAppKey)
}

// A page rendered on the server reads the channel's position from the HTTP
// API; a client that resumes from it gets exactly the events stored after.
func TestResumeFromTheHTTPAPIsPosition(t *testing.T) {
	base := startHerald(t)
	trigger(t, base, "private-orders.1", "before-1")
	trigger(t, base, "private-orders.1", "before-2")
	info := callAPI(t, base, http.MethodGet, "/apps/shop/channels/private-orders.1", url.Values{"info": {"position"}}, "")
	pos, _ := info["position"].(string)
	if pos == "" {
		t.Fatalf("info=position answered %v", info)
	}
	trigger(t, base, "private-orders.1", "after-1")
	trigger(t, base, "private-orders.1", "after-2")

	ws, socketID := dialHerald(t, base)
	auth := signing.ChannelAuth(replayAppKey, replayAppSecret, socketID, "private-orders.1", "")
	ok := subscribeWith(t, ws, map[string]any{"channel": "private-orders.1", "auth": auth, "resume": pos})
	if dataString(t, ok) != `{"position":"`+pos+`"}` {
		t.Fatalf("subscribe answer %+v", ok)
	}
	for _, want := range []string{"after-1", "after-2"} {
		if f := readFrame(t, ws); f.Event != "e" || dataString(t, f) != want {
			t.Fatalf("got %s %s, want %s", f.Event, f.Data, want)
		}
	}
	if f := readFrame(t, ws); f.Event != "herald:resumed" {
		t.Fatalf("got %s, want herald:resumed", f.Event)
	}
	trigger(t, base, "private-orders.1", "live")
	if f := readFrame(t, ws); f.Event != "e" || dataString(t, f) != "live" {
		t.Fatalf("got %s %s, want the live event", f.Event, f.Data)
	}
}

// An event triggered on a cache channel reaches a later subscriber at once.
func TestCacheChannelThroughTheHTTPAPI(t *testing.T) {
	base := startHerald(t)
	trigger(t, base, "cache-rate", "1.10")
	trigger(t, base, "cache-rate", "1.12")
	ws, _ := dialHerald(t, base)
	subscribeWith(t, ws, map[string]any{"channel": "cache-rate"})
	if f := readFrame(t, ws); f.Event != "e" || dataString(t, f) != "1.12" {
		t.Fatalf("got %s %s, want the last event", f.Event, f.Data)
	}
}
