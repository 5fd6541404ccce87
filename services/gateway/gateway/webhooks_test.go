package gateway_test

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/herald-ws/herald/shared/webhooks"
)

// hookReceiver is a webhook endpoint that checks each POST's key and
// signature and keeps the events, each batch id once.
type hookReceiver struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	ids    map[string]bool
	events []map[string]any
}

func newHookReceiver(t testing.TB, app *appconf.App) *hookReceiver {
	r := &hookReceiver{t: t, ids: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		if got := req.Header.Get("X-Pusher-Key"); got != app.Key {
			t.Errorf("X-Pusher-Key %q", got)
		}
		if !hmac.Equal([]byte(signing.Webhook(app.Secret, body)), []byte(req.Header.Get("X-Pusher-Signature"))) {
			t.Errorf("bad signature on %s", body)
		}
		var b struct {
			TimeMS int64            `json:"time_ms"`
			Events []map[string]any `json:"events"`
		}
		if err := json.Unmarshal(body, &b); err != nil || b.TimeMS == 0 || len(b.Events) == 0 {
			t.Errorf("bad batch %s: %v", body, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if id := req.Header.Get("X-Herald-Webhook-Id"); !r.ids[id] {
			r.ids[id] = true
			r.events = append(r.events, b.Events...)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// named returns the events received with webhook name name.
func (r *hookReceiver) named(name string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, e := range r.events {
		if e["name"] == name {
			out = append(out, e)
		}
	}
	return out
}

// expectUntyped checks an endpoint that names no types: it gets occupied
// channel_occupied webhooks, and none named name.
func (r *hookReceiver) expectUntyped(t *testing.T, occupied int, name string) {
	t.Helper()
	eventually(t, "occupancy on the endpoint without types", func() bool {
		return len(r.named("channel_occupied")) == occupied
	})
	if n := len(r.named(name)); n != 0 {
		t.Fatalf("%d %s webhooks on an endpoint that did not ask for them", n, name)
	}
}

// newHookEnv is newEnv with app "app-hook", whose endpoints are a receiver
// that takes types and one that names no types.
func newHookEnv(t *testing.T, types ...string) (e *env, app *appconf.App, typed, plain *hookReceiver) {
	t.Helper()
	app = &appconf.App{ID: "app-hook", Key: "key-hook", Secret: "secret-of-app-hook-0001", ClientEventsPerSecond: 100}
	typed, plain = newHookReceiver(t, app), newHookReceiver(t, app)
	app.Webhooks = []appconf.Webhook{{URL: typed.srv.URL, EventTypes: types}, {URL: plain.srv.URL}}
	e = newEnvOf(t, append(slices.Clone(testApps), *app))
	return e, e.app("app-hook"), typed, plain
}

func TestClientEventWebhooks(t *testing.T) {
	e, app, typed, plain := newHookEnv(t, webhooks.ClientEvent, "channel_occupied")
	a, b := connect(t, e.hs, app.Key), connect(t, e.hs, app.Key)
	a.subscribe(app, "private-chat")
	b.subscribe(app, "private-chat")
	a.send("client-typing", "private-chat", map[string]any{"who": "a"})
	b.expect("client-typing")

	var got []map[string]any
	eventually(t, "the client_event webhook", func() bool {
		got = typed.named(webhooks.ClientEvent)
		return len(got) > 0
	})
	want := map[string]any{"name": "client_event", "channel": "private-chat", "event": "client-typing",
		"data": `{"who":"a"}`, "socket_id": a.socketID}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("client_event webhooks %v, want [%v]", got, want)
	}

	// Presence channels name the sender's user.
	cd := `{"user_id":"u1"}`
	a.subscribeFrame(app, "presence-room", cd, true)
	a.expectSucceeded("presence-room")
	a.send("client-hi", "presence-room", "hello")
	eventually(t, "the presence client_event webhook", func() bool {
		got = typed.named(webhooks.ClientEvent)
		return len(got) > 1
	})
	want = map[string]any{"name": "client_event", "channel": "presence-room", "event": "client-hi",
		"data": "hello", "socket_id": a.socketID, "user_id": "u1"}
	if !reflect.DeepEqual(got[1], want) {
		t.Fatalf("client_event webhook %v, want %v", got[1], want)
	}

	// An endpoint that names no types gets occupancy but no client events.
	plain.expectUntyped(t, 2, webhooks.ClientEvent)
}

func TestCacheMissWebhooks(t *testing.T) {
	e, app, typed, plain := newHookEnv(t, webhooks.CacheMiss)
	c := connect(t, e.hs, app.Key)
	c.subscribe(app, "cache-prices")
	if f := c.read(); f.Event != "pusher:cache_miss" {
		t.Fatalf("got %s, want cache_miss", f.raw)
	}
	var got []map[string]any
	eventually(t, "the cache_miss webhook", func() bool {
		got = typed.named(webhooks.CacheMiss)
		return len(got) > 0
	})
	want := map[string]any{"name": "cache_miss", "channel": "cache-prices"}
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("cache_miss webhooks %v, want [%v]", got, want)
	}
	plain.expectUntyped(t, 1, webhooks.CacheMiss)
}

func TestSubscriptionCountWebhooks(t *testing.T) {
	e, app, typed, _ := newHookEnv(t, webhooks.SubscriptionCount)
	a, b := connect(t, e.hs, app.Key), connect(t, e.hs, app.Key)
	a.subscribe(app, "news")
	b.subscribe(app, "news")
	eventually(t, "a subscription_count webhook of 2", func() bool {
		got := typed.named(webhooks.SubscriptionCount)
		return len(got) > 0 && reflect.DeepEqual(got[len(got)-1],
			map[string]any{"name": "subscription_count", "channel": "news", "subscription_count": float64(2)})
	})
	// The app does not relay counts to clients: its endpoint asked only
	// for webhooks.
	for _, f := range a.ping() {
		if f.Event == "pusher_internal:subscription_count" {
			t.Fatalf("a client of an app without subscription_count got %s", f.raw)
		}
	}
}
