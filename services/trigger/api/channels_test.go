package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/gateway/gatewaytest"
	"github.com/herald-ws/herald/services/presence/presencetest"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/signing"
)

// world is the HTTP API beside what it reports on: the presence service and
// two gateways on the same NATS, with WebSocket clients subscribed.
type world struct {
	*fixture
	apps     *appconf.Registry
	gateways []*httptest.Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	f := newFixture(t, "")
	apps, err := appconf.NewRegistry(testApps)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{fixture: f, apps: apps}

	opt := presencetest.Options(apps)
	opt.DrainGrace, opt.CountInterval, opt.ReconcileInterval = 0, 0, 0 // the service's defaults
	presencetest.Start(t, f.srv, opt)

	for range 2 {
		_, hs := gatewaytest.Start(t, gateway.Options{Apps: apps, NC: natstest.Connect(t, f.srv)})
		w.gateways = append(w.gateways, hs)
	}
	return w
}

// waitChannel waits until app1's channel, asked for info, answers want
// (compared with sorted keys): the state persisted after a flush interval.
func (w *world) waitChannel(t *testing.T, channel, info, want string) {
	t.Helper()
	path := "/apps/app1/channels/" + channel
	poll.Until(t, poll.Patience, path+" to answer "+want, func() bool {
		return canonical(t, w.get(t, path, url.Values{"info": {info}}).raw) == want
	})
}

// subscriber is one WebSocket client of app1.
type subscriber struct {
	c        *websocket.Conn
	socketID string
}

// subscribe connects to gateway i and subscribes to channel, as user on a
// presence channel; it returns once subscription_succeeded arrived.
func (w *world) subscribe(t *testing.T, i int, channel, user string) *subscriber {
	t.Helper()
	u := "ws" + strings.TrimPrefix(w.gateways[i].URL, "http") + "/app/" + testApps[0].Key + "?protocol=7&client=js&version=8.4.0"
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &subscriber{c: c}
	var est struct {
		Data string `json:"data"`
	}
	s.read(t, &est)
	var d struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal([]byte(est.Data), &d); err != nil {
		t.Fatal(err)
	}
	s.socketID = d.SocketID
	data := map[string]any{"channel": channel}
	if user != "" {
		channelData := `{"user_id":"` + user + `"}`
		data["channel_data"] = channelData
		data["auth"] = signing.ChannelAuth(testApps[0].Key, testApps[0].Secret, s.socketID, channel, channelData)
	} else if strings.HasPrefix(channel, "private-") {
		data["auth"] = signing.ChannelAuth(testApps[0].Key, testApps[0].Secret, s.socketID, channel, "")
	}
	if err := c.WriteJSON(map[string]any{"event": "pusher:subscribe", "data": data}); err != nil {
		t.Fatal(err)
	}
	for {
		var f struct {
			Event string `json:"event"`
		}
		s.read(t, &f)
		switch f.Event {
		case "pusher_internal:subscription_succeeded":
			return s
		case "pusher:subscription_error":
			t.Fatalf("subscribing to %s: refused", channel)
		}
	}
}

func (s *subscriber) read(t *testing.T, v any) {
	t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(poll.Patience))
	if err := s.c.ReadJSON(v); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
}

// get calls GET path signed with query params.
func (f *fixture) get(t *testing.T, path string, params url.Values) resp {
	t.Helper()
	q := signing.SignRequest(http.MethodGet, path, params, nil, testApps[0].Key, testApps[0].Secret, now)
	return f.do(t, req{method: http.MethodGet, path: path, query: q})
}

// checkAnswer checks an answer's status and, for a 200, its JSON (want,
// compared with sorted keys), else that its error says want.
func checkAnswer(t *testing.T, got resp, status int, want string) {
	t.Helper()
	if got.status != status {
		t.Fatalf("%d %s, want %d", got.status, got.raw, status)
	}
	if status != 200 {
		if msg, _ := got.body["error"].(string); !strings.Contains(msg, want) {
			t.Fatalf("error %q, want one saying %q", msg, want)
		}
		return
	}
	if c := canonical(t, got.raw); c != want {
		t.Fatalf("answer %s, want %s", c, want)
	}
}

// canonical re-encodes a JSON answer with sorted keys.
func canonical(t *testing.T, raw string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestChannelQueries(t *testing.T) {
	w := newWorld(t)
	w.subscribe(t, 0, "news", "")
	w.subscribe(t, 1, "news", "")
	w.subscribe(t, 0, "news-eu", "")
	w.subscribe(t, 1, "private-x", "")
	w.subscribe(t, 0, "presence-room", "ann")
	w.subscribe(t, 1, "presence-room", "bob")
	bobAgain := w.subscribe(t, 0, "presence-room", "bob") // one user, two gateways

	// Channel state is persisted a flush interval after the subscriptions.
	w.waitChannel(t, "presence-room", "user_count,subscription_count", `{"occupied":true,"subscription_count":3,"user_count":2}`)
	w.waitChannel(t, "news", "subscription_count", `{"occupied":true,"subscription_count":2}`)

	tests := []struct {
		name   string
		path   string
		info   string
		prefix string
		status int
		want   string // canonical JSON, or a part of the error
	}{
		{"every occupied channel", "/apps/app1/channels", "", "", 200,
			`{"channels":{"news":{},"news-eu":{},"presence-room":{},"private-x":{}}}`},
		{"by prefix", "/apps/app1/channels", "", "news", 200, `{"channels":{"news":{},"news-eu":{}}}`},
		{"user counts of presence channels", "/apps/app1/channels", "user_count", "presence-", 200,
			`{"channels":{"presence-room":{"user_count":2}}}`},
		{"subscription counts", "/apps/app1/channels", "subscription_count", "news", 200,
			`{"channels":{"news":{"subscription_count":2},"news-eu":{"subscription_count":1}}}`},
		{"no channel with the prefix", "/apps/app1/channels", "", "nothing-", 200, `{"channels":{}}`},
		{"user_count not limited to presence", "/apps/app1/channels", "user_count", "", 400, "filter_by_prefix=presence-"},
		{"user_count with another prefix", "/apps/app1/channels", "user_count", "news", 400, "filter_by_prefix=presence-"},
		{"unknown attribute in a list", "/apps/app1/channels", "members", "", 400, "unknown info attribute"},

		{"occupied channel", "/apps/app1/channels/news", "", "", 200, `{"occupied":true}`},
		{"its subscription count", "/apps/app1/channels/news", "subscription_count", "", 200,
			`{"occupied":true,"subscription_count":2}`},
		{"presence channel", "/apps/app1/channels/presence-room", "user_count", "", 200, `{"occupied":true,"user_count":2}`},
		{"unoccupied channel", "/apps/app1/channels/quiet", "subscription_count", "", 200,
			`{"occupied":false,"subscription_count":0}`},
		{"user_count of a public channel", "/apps/app1/channels/news", "user_count", "", 400, "presence channels"},
		{"cache of a channel without cache", "/apps/app1/channels/news", "cache", "", 400, "cache channels"},
		{"unknown attribute", "/apps/app1/channels/news", "members", "", 400, "unknown info attribute"},
		{"bad channel name", "/apps/app1/channels/bad%20name", "", "", 400, "channel name"},

		{"users of a presence channel", "/apps/app1/channels/presence-room/users", "", "", 200,
			`{"users":[{"id":"ann"},{"id":"bob"}]}`},
		{"users of an empty presence channel", "/apps/app1/channels/presence-none/users", "", "", 200, `{"users":[]}`},
		{"users of a public channel", "/apps/app1/channels/news/users", "", "", 400, "only presence channels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := url.Values{}
			if tt.info != "" {
				params.Set("info", tt.info)
			}
			if tt.prefix != "" {
				params.Set("filter_by_prefix", tt.prefix)
			}
			got := w.get(t, tt.path, params)
			checkAnswer(t, got, tt.status, tt.want)
		})
	}

	// The replay extension's position goes beside the counts.
	both := w.get(t, "/apps/app1/channels/news", url.Values{"info": {"subscription_count,position"}})
	if both.status != 200 || both.body["occupied"] != true || both.body["subscription_count"] != float64(2) || both.body["position"] == nil {
		t.Fatalf("position with counts: %d %s", both.status, both.raw)
	}

	// The state follows: bob's second connection leaves, he stays a member.
	bobAgain.c.Close()
	w.waitChannel(t, "presence-room", "user_count,subscription_count", `{"occupied":true,"subscription_count":2,"user_count":2}`)
}

func TestEventInfo(t *testing.T) {
	w := newWorld(t)
	w.subscribe(t, 0, "news", "")
	w.subscribe(t, 1, "news", "")
	w.subscribe(t, 0, "presence-room", "ann")
	w.subscribe(t, 1, "presence-room", "ann")
	w.waitChannel(t, "presence-room", "subscription_count", `{"occupied":true,"subscription_count":2}`)
	w.waitChannel(t, "news", "subscription_count", `{"occupied":true,"subscription_count":2}`)

	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"both attributes", "/apps/app1/events",
			`{"name":"e","data":"x","channels":["news","presence-room","quiet"],"info":"user_count,subscription_count"}`, 200,
			`{"channels":{"news":{"subscription_count":2},"presence-room":{"subscription_count":2,"user_count":1},"quiet":{"subscription_count":0}}}`},
		{"user_count only on presence channels", "/apps/app1/events",
			`{"name":"e","data":"x","channels":["news","presence-room"],"info":"user_count"}`, 200,
			`{"channels":{"news":{},"presence-room":{"user_count":1}}}`},
		{"no info", "/apps/app1/events", `{"name":"e","data":"x","channel":"news"}`, 200, `{}`},
		{"batch", "/apps/app1/batch_events",
			`{"batch":[{"name":"e","data":"x","channel":"presence-room","info":"user_count,subscription_count"},` +
				`{"name":"e","data":"x","channel":"news"},{"name":"e","data":"x","channel":"news","info":"subscription_count"}]}`, 200,
			`{"batch":[{"subscription_count":2,"user_count":1},{},{"subscription_count":2}]}`},
		{"unknown attribute", "/apps/app1/events", `{"name":"e","data":"x","channel":"news","info":"occupied"}`, 400,
			"unknown info attribute"},
		{"unknown attribute in a batch", "/apps/app1/batch_events",
			`{"batch":[{"name":"e","data":"x","channel":"news"},{"name":"e","data":"x","channel":"news","info":"cache"}]}`, 400,
			"batch[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := w.do(t, req{path: tt.path, body: tt.body})
			checkAnswer(t, got, tt.status, tt.want)
		})
	}
	// A refused info refuses the event: nothing of it was stored.
	if n := w.count(t, "app1", "news"); n != 5 {
		t.Fatalf("%d events stored on news, want the 5 accepted", n)
	}
}
