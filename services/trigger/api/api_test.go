package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/metricstest"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// The API's clock: signatures are made and checked against it.
var now = time.Unix(1_750_000_000, 0)

var testApps = []appconf.App{
	{ID: "app1", Key: "key-one", Secret: "secret-of-app-one-0001"},
	{ID: "app2", Key: "key-two", Secret: "secret-of-app-two-0002"},
	{ID: "off", Key: "key-off", Secret: "secret-of-app-off-0003", Disabled: true},
	{ID: "small", Key: "key-small", Secret: "secret-of-app-small-04", MaxEventBytes: 100},
}

type fixture struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	reg *prometheus.Registry
	ts  *httptest.Server
}

func newFixture(t testing.TB, prefix string) *fixture {
	t.Helper()
	f := &fixture{srv: natstest.Start(t), reg: prometheus.NewRegistry()}
	f.nc = natstest.Connect(t, f.srv)
	var err error
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	a := startAPI(t, natstest.Connect(t, f.srv), testApps, api.Options{
		Metrics:    f.reg,
		PathPrefix: prefix,
		// Outages in these tests last: a short budget keeps them quick.
		PublishRetryFor: time.Second,
	})
	f.ts = httptest.NewServer(a.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

// startAPI is the trigger API for apps on nc, on the tests' clock unless
// opt sets another; opt sets the rest.
func startAPI(t testing.TB, nc *nats.Conn, apps []appconf.App, opt api.Options) *api.API {
	t.Helper()
	reg, err := appconf.NewRegistry(apps)
	if err != nil {
		t.Fatal(err)
	}
	opt.Apps, opt.NC = reg, nc
	if opt.Now == nil {
		opt.Now = func() time.Time { return now }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := api.New(ctx, opt)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	return a
}

// newProxiedFixture is the API for the first test app with its NATS
// connection through a freezeProxy; the fixture's own connection reaches
// the server directly.
func newProxiedFixture(t *testing.T, publishRetryFor time.Duration) (*fixture, *freezeProxy) {
	t.Helper()
	srv := natstest.Start(t)
	p := newFreezeProxy(t, srv.Addr().String())
	nc, err := nats.Connect("nats://" + p.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	a := startAPI(t, nc, testApps[:1], api.Options{PublishRetryFor: publishRetryFor})
	f := &fixture{srv: srv, ts: httptest.NewServer(a.Handler()), nc: natstest.Connect(t, srv)}
	t.Cleanup(f.ts.Close)
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	return f, p
}

// req is one HTTP API call; the zero signer signs with the app of the path.
type req struct {
	method   string
	path     string // as sent
	body     string
	signPath string // path signed; "" = path
	key      string // "" = the key of app1
	secret   string
	at       time.Time // signing time; zero = now
	query    string    // when set, sent instead of a signed query
	unsigned bool
	header   http.Header
}

type resp struct {
	status int
	ctype  string
	body   map[string]any
	raw    string
}

func (f *fixture) do(t *testing.T, r req) resp {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.key == "" {
		r.key, r.secret = testApps[0].Key, testApps[0].Secret
	}
	if r.signPath == "" {
		r.signPath = r.path
	}
	if r.at.IsZero() {
		r.at = now
	}
	q := r.query
	if q == "" && !r.unsigned {
		q = signing.SignRequest(r.method, r.signPath, nil, []byte(r.body), r.key, r.secret, r.at)
	}
	u := f.ts.URL + r.path
	if q != "" {
		u += "?" + q
	}
	hr, err := http.NewRequest(r.method, u, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	for k, v := range r.header {
		hr.Header[k] = v
	}
	// Bounded, so that a hang fails the test instead of stalling it.
	client := &http.Client{Timeout: 15 * time.Second}
	res, err := client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), raw: string(b)}
	if err := json.Unmarshal(b, &out.body); err != nil {
		t.Fatalf("%s %s: answer %d is not a JSON object: %q", r.method, r.path, res.StatusCode, b)
	}
	return out
}

func eventBody(t *testing.T, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, "")
	good := `{"name":"e","data":"{}","channel":"c"}`
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	batch11 := make([]map[string]any, 11)
	for i := range batch11 {
		batch11[i] = map[string]any{"name": "e", "data": "x", "channel": "c"}
	}
	tests := []struct {
		name    string
		req     req
		status  int
		errPart string
	}{
		{"unknown route", req{method: "GET", path: "/nope", unsigned: true}, 404, "no such route"},
		{"unknown app route", req{path: "/apps/app1/nope", body: good}, 404, "no such route"},
		{"trailing slash", req{path: "/apps/app1/events/", body: good}, 404, "no such route"},
		{"unknown app", req{path: "/apps/zzz/events", body: good}, 404, "unknown app"},
		{"wrong method on events", req{method: "GET", path: "/apps/app1/events"}, 405, "method"},
		{"wrong method on channels", req{method: "POST", path: "/apps/app1/channels", body: good}, 405, "method"},
		{"wrong method on up", req{method: "POST", path: "/up", unsigned: true}, 405, "method"},
		{"no signature", req{path: "/apps/app1/events", body: good, unsigned: true}, 401, "auth_key"},
		{"bad signature", req{path: "/apps/app1/events", body: good,
			query: tamper(signing.SignRequest("POST", "/apps/app1/events", nil, []byte(good), "key-one", "secret-of-app-one-0001", now))}, 401, "signature"},
		{"signed for another path", req{path: "/apps/app1/events", signPath: "/apps/app1/batch_events", body: good}, 401, "signature"},
		{"wrong secret", req{path: "/apps/app1/events", body: good, key: "key-one", secret: "secret-of-app-two-0002"}, 401, "signature"},
		{"expired timestamp", req{path: "/apps/app1/events", body: good, at: now.Add(-601 * time.Second)}, 401, "600"},
		{"timestamp from the future", req{path: "/apps/app1/events", body: good, at: now.Add(601 * time.Second)}, 401, "600"},
		{"bad auth_version", req{path: "/apps/app1/events", body: good,
			query: "auth_key=key-one&auth_timestamp=1750000000&auth_version=2.0&auth_signature=ab"}, 401, "auth_version"},
		{"bad body_md5", req{path: "/apps/app1/events", body: good,
			query: signing.SignRequest("POST", "/apps/app1/events", nil, []byte(`{"name":"x"}`), "key-one", "secret-of-app-one-0001", now)}, 401, "body_md5"},
		{"key of another app", req{path: "/apps/app1/events", body: good, key: "key-two", secret: "secret-of-app-two-0002"}, 401, "this app"},
		{"disabled app", req{path: "/apps/off/events", body: good, key: "key-off", secret: "secret-of-app-off-0003"}, 403, "disabled"},
		{"data over the app limit", req{path: "/apps/small/events", key: "key-small", secret: "secret-of-app-small-04",
			body: eventBody(t, map[string]any{"name": "e", "channel": "c", "data": strings.Repeat("x", 101)})}, 413, "over the limit"},
		{"batch data over the app limit", req{path: "/apps/small/batch_events", key: "key-small", secret: "secret-of-app-small-04",
			body: eventBody(t, map[string]any{"batch": []map[string]any{{"name": "e", "channel": "c", "data": strings.Repeat("x", 101)}}})}, 413, "batch[0]"},
		{"event body over the hard cap", req{path: "/apps/app1/events",
			body: eventBody(t, map[string]any{"name": "e", "channel": "c", "data": strings.Repeat("x", 300<<10)})}, 413, "request body"},
		{"batch body over the hard cap", req{path: "/apps/app1/batch_events",
			body: eventBody(t, map[string]any{"batch": []map[string]any{{"name": "e", "channel": "c", "data": strings.Repeat("x", 1100<<10)}}})}, 413, "request body"},
		{"bad JSON", req{path: "/apps/app1/events", body: `{"name":`}, 400, "JSON"},
		{"not an object", req{path: "/apps/app1/events", body: `["e"]`}, 400, "JSON object"},
		{"empty body", req{path: "/apps/app1/events"}, 400, "JSON object"},
		{"missing name", req{path: "/apps/app1/events", body: `{"data":"{}","channel":"c"}`}, 400, "name"},
		{"empty name", req{path: "/apps/app1/events", body: `{"name":"","data":"{}","channel":"c"}`}, 400, "name"},
		{"name over 200", req{path: "/apps/app1/events", body: eventBody(t, map[string]any{"name": strings.Repeat("n", 201), "data": "x", "channel": "c"})}, 400, "200"},
		{"name not a string", req{path: "/apps/app1/events", body: `{"name":7,"data":"{}","channel":"c"}`}, 400, "name"},
		{"missing data", req{path: "/apps/app1/events", body: `{"name":"e","channel":"c"}`}, 400, "data"},
		{"data is an object", req{path: "/apps/app1/events", body: `{"name":"e","data":{"a":1},"channel":"c"}`}, 400, "data must be a string"},
		{"data is null", req{path: "/apps/app1/events", body: `{"name":"e","data":null,"channel":"c"}`}, 400, "data must be a string"},
		{"no channel", req{path: "/apps/app1/events", body: `{"name":"e","data":"x"}`}, 400, "channel"},
		{"empty channels", req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channels":[]}`}, 400, "channel"},
		{"bad channel name", req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channels":["ok","bad channel"]}`}, 400, "channel name"},
		{"channel name over 200", req{path: "/apps/app1/events", body: eventBody(t, map[string]any{"name": "e", "data": "x", "channel": strings.Repeat("c", 201)})}, 400, "channel name"},
		{"channels not a list", req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channels":"c"}`}, 400, "channels"},
		{"101 channels", req{path: "/apps/app1/events", body: eventBody(t, map[string]any{"name": "e", "data": "x", "channels": many})}, 400, "more than 100"},
		{"bad socket_id", req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channel":"c","socket_id":"12.ab"}`}, 400, "socket_id"},
		{"socket_id without dot", req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channel":"c","socket_id":"12"}`}, 400, "socket_id"},
		{"idempotency key too long", req{path: "/apps/app1/events", body: good,
			header: http.Header{"X-Idempotency-Key": {strings.Repeat("k", 201)}}}, 400, "idempotency"},
		{"batch of 11", req{path: "/apps/app1/batch_events", body: eventBody(t, map[string]any{"batch": batch11})}, 400, "more than 10"},
		{"empty batch", req{path: "/apps/app1/batch_events", body: `{"batch":[]}`}, 400, "batch"},
		{"batch item without channel", req{path: "/apps/app1/batch_events", body: `{"batch":[{"name":"e","data":"x"}]}`}, 400, "batch[0]: missing channel"},
		{"batch item with bad socket_id", req{path: "/apps/app1/batch_events",
			body: `{"batch":[{"name":"e","data":"x","channel":"c"},{"name":"e","data":"x","channel":"c","socket_id":"x"}]}`}, 400, "batch[1]"},
		{"users of a public channel", req{method: "GET", path: "/apps/app1/channels/news/users"}, 400, "presence channels"},
		{"event info attribute unknown", req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channel":"c","info":"nope"}`}, 400, "info"},
		{"terminate a user id over the limit", req{path: "/apps/app1/users/" + strings.Repeat("u", 129) + "/terminate_connections"}, 400, "user id"},
		{"channels unsigned", req{method: "GET", path: "/apps/app1/channels", unsigned: true}, 401, "auth_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.do(t, tt.req)
			if got.status != tt.status {
				t.Errorf("status = %d, want %d (%s)", got.status, tt.status, got.raw)
			}
			if got.ctype != "application/json" {
				t.Errorf("Content-Type = %q", got.ctype)
			}
			msg, _ := got.body["error"].(string)
			if msg == "" || len(got.body) != 1 {
				t.Fatalf("body = %s, want {\"error\":…}", got.raw)
			}
			if !strings.Contains(msg, tt.errPart) {
				t.Errorf("error = %q, want it to mention %q", msg, tt.errPart)
			}
		})
	}
	// Nothing refused was stored.
	for _, app := range []string{"app1", "small", "off"} {
		s, err := f.js.Stream(context.Background(), names.EventsStream(app))
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("stream of %s holds %d messages after refusals", app, n)
		}
	}
}

// tamper changes the last hex digit of auth_signature.
func tamper(q string) string {
	v, _ := url.ParseQuery(q)
	sig := []byte(v.Get("auth_signature"))
	if sig[len(sig)-1] == '0' {
		sig[len(sig)-1] = '1'
	} else {
		sig[len(sig)-1] = '0'
	}
	v.Set("auth_signature", string(sig))
	return v.Encode()
}

// stored returns the last message stored on app's channel. A missing one
// fails the test at once: the API answers only after storage.
func (f *fixture) stored(t *testing.T, app, channel string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := f.js.Stream(context.Background(), names.EventsStream(app))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), names.EventSubject(app, channel))
	if err != nil {
		t.Fatalf("last message on %s: %v", channel, err)
	}
	return m
}

func (f *fixture) count(t *testing.T, app, channel string) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), names.EventsStream(app))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(names.EventSubject(app, channel)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[names.EventSubject(app, channel)]
}

func checkMsg(t *testing.T, m *jetstream.RawStreamMsg, name, data, exclude string) {
	t.Helper()
	if got := m.Header.Get(names.HeaderEvent); got != name {
		t.Errorf("%s: event = %q, want %q", m.Subject, got, name)
	}
	if got := string(m.Data); got != data {
		t.Errorf("%s: data = %q, want %q", m.Subject, got, data)
	}
	if got := m.Header.Get(names.HeaderExclude); got != exclude {
		t.Errorf("%s: exclude = %q, want %q", m.Subject, got, exclude)
	}
	// Every event has a message id, so that a publish retried after a
	// lost ack is stored once.
	if got := m.Header.Get(names.HeaderNatsMsgID); got == "" {
		t.Errorf("%s: no message id", m.Subject)
	}
}

func TestEventsAreStored(t *testing.T) {
	f := newFixture(t, "")
	t.Run("one channel", func(t *testing.T) {
		got := f.do(t, req{path: "/apps/app1/events",
			body: `{"name":"App\\Events\\OrderShipped","data":"{\"id\":42}","channel":"private-orders.42","socket_id":"123.456"}`})
		if got.status != 200 || got.raw != "{}\n" {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
		checkMsg(t, f.stored(t, "app1", "private-orders.42"), `App\Events\OrderShipped`, `{"id":42}`, "123.456")
	})
	t.Run("many channels", func(t *testing.T) {
		chans := []string{"news", "presence-room;1", "#server-to-user-7", "news"}
		got := f.do(t, req{path: "/apps/app1/events", body: eventBody(t, map[string]any{"name": "tick", "data": "<&>é", "channels": chans})})
		if got.status != 200 {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
		for _, ch := range chans[:3] {
			checkMsg(t, f.stored(t, "app1", ch), "tick", "<&>é", "")
		}
		if n := f.count(t, "app1", "news"); n != 1 {
			t.Errorf("a channel named twice got %d messages, want 1", n)
		}
	})
	t.Run("batch", func(t *testing.T) {
		body := eventBody(t, map[string]any{"batch": []map[string]any{
			{"name": "a", "data": "1", "channel": "b1"},
			{"name": "b", "data": "2", "channel": "b2", "socket_id": "1.2"},
			{"name": "c", "data": "3", "channel": "b1"},
		}})
		got := f.do(t, req{path: "/apps/app1/batch_events", body: body})
		if got.status != 200 || got.raw != "{}\n" {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
		checkMsg(t, f.stored(t, "app1", "b1"), "c", "3", "")
		checkMsg(t, f.stored(t, "app1", "b2"), "b", "2", "1.2")
		if n := f.count(t, "app1", "b1"); n != 2 {
			t.Errorf("b1 holds %d messages, want 2", n)
		}
	})
	t.Run("identical events are both stored", func(t *testing.T) {
		body := `{"name":"progress","data":"{\"pct\":50}","channel":"job.9"}`
		for i := 0; i < 2; i++ {
			if got := f.do(t, req{path: "/apps/app1/events", body: body}); got.status != 200 {
				t.Fatalf("answer %d %s", got.status, got.raw)
			}
		}
		if n := f.count(t, "app1", "job.9"); n != 2 {
			t.Errorf("job.9 holds %d messages, want 2", n)
		}
	})
	t.Run("data at the limit", func(t *testing.T) {
		data := strings.Repeat("é", 50) // 100 bytes
		got := f.do(t, req{path: "/apps/small/events", key: "key-small", secret: "secret-of-app-small-04",
			body: eventBody(t, map[string]any{"name": "e", "data": data, "channel": "c"})})
		if got.status != 200 {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
		checkMsg(t, f.stored(t, "small", "c"), "e", data, "")
	})
	t.Run("info", func(t *testing.T) {
		got := f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channels":["i1","presence-i2"],"info":"subscription_count,user_count"}`})
		if got.status != 200 {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
		// Nobody is subscribed: every count is 0, user_count only where
		// there can be users.
		want := `{"channels":{"i1":{"subscription_count":0},"presence-i2":{"subscription_count":0,"user_count":0}}}` + "\n"
		if got.raw != want {
			t.Errorf("answer = %s, want %s", got.raw, want)
		}
		got = f.do(t, req{path: "/apps/app1/batch_events", body: `{"batch":[{"name":"e","data":"x","channel":"i1","info":"subscription_count"},{"name":"e","data":"x","channel":"i1"}]}`})
		if want := `{"batch":[{"subscription_count":0},{}]}` + "\n"; got.raw != want {
			t.Errorf("batch answer = %s, want %s", got.raw, want)
		}
	})

	if n := metricstest.Value(t, f.reg, "herald_trigger_events_published_total", nil); n < 13 {
		t.Errorf("events_published_total = %v, want at least 13", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, "")
	body := `{"name":"e","data":"x","channels":["k1","k2"]}`
	for _, key := range []string{"order-1", "order-1", "order-2"} {
		got := f.do(t, req{path: "/apps/app1/events", body: body, header: http.Header{"X-Idempotency-Key": {key}}})
		if got.status != 200 {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
	}
	// The plain header name works too, and dedupes against the same key.
	got := f.do(t, req{path: "/apps/app1/events", body: body, header: http.Header{"Idempotency-Key": {"order-2"}}})
	if got.status != 200 {
		t.Fatalf("answer %d %s", got.status, got.raw)
	}
	for _, ch := range []string{"k1", "k2"} {
		if n := f.count(t, "app1", ch); n != 2 {
			t.Errorf("%s holds %d messages, want 2 (one per key)", ch, n)
		}
		if id := f.stored(t, "app1", ch).Header.Get(names.HeaderNatsMsgID); id != "order-2:"+ch {
			t.Errorf("message id = %q, want %q", id, "order-2:"+ch)
		}
	}

	// In a batch, the index tells apart two events on one channel.
	batch := `{"batch":[{"name":"a","data":"1","channel":"kb"},{"name":"b","data":"2","channel":"kb"}]}`
	for i := 0; i < 2; i++ {
		got := f.do(t, req{path: "/apps/app1/batch_events", body: batch, header: http.Header{"X-Idempotency-Key": {"batch-1"}}})
		if got.status != 200 {
			t.Fatalf("answer %d %s", got.status, got.raw)
		}
	}
	if n := f.count(t, "app1", "kb"); n != 2 {
		t.Errorf("kb holds %d messages, want 2", n)
	}
	if id := f.stored(t, "app1", "kb").Header.Get(names.HeaderNatsMsgID); id != "batch-1:kb:1" {
		t.Errorf("message id = %q, want batch-1:kb:1", id)
	}
}

func TestPathPrefix(t *testing.T) {
	f := newFixture(t, "reverb/")
	body := `{"name":"e","data":"x","channel":"p"}`
	tests := []struct {
		name     string
		req      req
		status   int
		wantBody string
	}{
		{"signed without the prefix", req{path: "/reverb/apps/app1/events", signPath: "/apps/app1/events", body: body}, 200, "{}"},
		{"signed with the prefix", req{path: "/reverb/apps/app1/events", body: body}, 200, "{}"},
		{"signed over another prefix", req{path: "/reverb/apps/app1/events", signPath: "/other/apps/app1/events", body: body}, 401, ""},
		{"without the prefix", req{path: "/apps/app1/events", body: body}, 404, ""},
		{"another prefix", req{path: "/reverbx/apps/app1/events", body: body}, 404, ""},
		{"up", req{method: "GET", path: "/up", unsigned: true}, 200, `{"status":"ok"}`},
		{"up under the prefix", req{method: "GET", path: "/reverb/up", unsigned: true}, 200, `{"status":"ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.do(t, tt.req)
			if got.status != tt.status {
				t.Fatalf("status = %d, want %d (%s)", got.status, tt.status, got.raw)
			}
			if tt.wantBody != "" && strings.TrimSpace(got.raw) != tt.wantBody {
				t.Errorf("body = %s, want %s", got.raw, tt.wantBody)
			}
		})
	}
	if n := f.count(t, "app1", "p"); n != 2 {
		t.Errorf("p holds %d messages, want 2", n)
	}
}

// Route serves the publish routes and hands every other path to next
// (the status page's among them, under /apps/).
func TestRoute(t *testing.T) {
	srv := natstest.Start(t)
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	a := startAPI(t, nc, testApps, api.Options{PathPrefix: "reverb"})
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
	h := a.Route(next)
	for _, tt := range []struct {
		path string
		api  bool
	}{
		{"/reverb/apps/app1/events", true},
		{"/reverb/apps/app1/batch_events", true},
		{"/reverb/apps/other/events", true},
		{"/reverb/apps/app1/channels", false},
		{"/reverb/apps/app1/channels/c/users", false},
		{"/reverb/apps/_herald/status", false},
		{"/reverb/apps/app1/events/x", false},
		{"/reverb/apps//events", false},
		{"/reverb/apps/../events", false},
		{"/reverb/apps/a%2Fb/events", false},
		{"/apps/app1/events", false},
		{"/reverb/up", false},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader("{}")))
		if got := w.Code != 299; got != tt.api {
			t.Errorf("%s: answered by the API %v, want %v (status %d)", tt.path, got, tt.api, w.Code)
		}
	}
}

// A stream deleted under a running API is created again on the next
// publish, and the event is stored.
func TestDeletedStreamIsEnsuredAgain(t *testing.T) {
	f := newFixture(t, "")
	if err := f.js.DeleteStream(context.Background(), names.EventsStream("app1")); err != nil {
		t.Fatal(err)
	}
	got := f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"back","channel":"c"}`})
	if got.status != 200 {
		t.Fatalf("answer %d %s", got.status, got.raw)
	}
	checkMsg(t, f.stored(t, "app1", "c"), "e", "back", "")
}

// With NATS gone, a publish gets a 5xx JSON error within the ack timeout
// instead of hanging, and /up turns 503.
func TestNATSDown(t *testing.T) {
	f := newFixture(t, "")
	if got := f.do(t, req{method: "GET", path: "/up", unsigned: true}); got.status != 200 {
		t.Fatalf("up before: %d %s", got.status, got.raw)
	}
	f.srv.Shutdown()
	f.srv.WaitForShutdown()

	got := f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channel":"c"}`})
	if got.status < 500 {
		t.Fatalf("status = %d, want 5xx (%s)", got.status, got.raw)
	}
	if msg, _ := got.body["error"].(string); msg == "" {
		t.Errorf("body = %s, want an error", got.raw)
	}
	poll.Until(t, poll.Patience, "/up to answer 503", func() bool {
		return f.do(t, req{method: "GET", path: "/up", unsigned: true}).status == http.StatusServiceUnavailable
	})
}

func TestMetricsCountRequests(t *testing.T) {
	f := newFixture(t, "")
	f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channel":"c"}`})
	f.do(t, req{path: "/apps/app1/events", body: `{"name":"e"}`})
	f.do(t, req{method: "GET", path: "/nowhere", unsigned: true})
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"herald_trigger_requests_total", map[string]string{"route": "events", "code": "200"}, 1},
		{"herald_trigger_requests_total", map[string]string{"route": "events", "code": "400"}, 1},
		{"herald_trigger_requests_total", map[string]string{"route": "unknown", "code": "404"}, 1},
		{"herald_trigger_events_published_total", nil, 1},
		{"herald_trigger_publish_duration_seconds", nil, 1},
	}
	// A request is counted when its handler returns, which can be after
	// the client has read the answer.
	for _, tt := range tests {
		poll.Until(t, poll.Patience, fmt.Sprintf("%s%v = %v", tt.name, tt.labels, tt.want), func() bool {
			return metricstest.Value(t, f.reg, tt.name, tt.labels) == tt.want
		})
	}
}

// Two APIs on one registry share the collectors instead of failing.
func TestNewTwiceOnOneRegistry(t *testing.T) {
	srv := natstest.Start(t)
	reg := prometheus.NewRegistry()
	for range 2 {
		startAPI(t, natstest.Connect(t, srv), testApps[:1], api.Options{Metrics: reg, Stream: events.StreamOptions{Replicas: 1}})
	}
}

// When NATS stops answering while the connection still looks up, the
// request fails with 503 once the ack timeout passes instead of hanging.
func TestUnansweredPublishTimesOut(t *testing.T) {
	f, p := newProxiedFixture(t, time.Second)

	p.frozen.Store(true)
	got := f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"x","channel":"c"}`})
	if got.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503 (%s)", got.status, got.raw)
	}
}

// An event whose acknowledgement is lost is sent again under the same
// message id, and the stream keeps it once; the answer is 200, and the
// cache channel's copy is written although the ack of the second try says
// duplicate.
func TestLostAckIsRetriedAndStoredOnce(t *testing.T) {
	f, p := newProxiedFixture(t, 30*time.Second)

	p.acksLost.Store(true)
	answer := make(chan resp, 1)
	go func() {
		answer <- f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"once","channels":["lost","cache-lost"]}`})
	}()
	// The first try reached the stream; its acks did not come back.
	poll.Until(t, poll.Patience, "the first try stored on both channels", func() bool {
		return f.count(t, "app1", "lost") == 1 && f.count(t, "app1", "cache-lost") == 1
	})
	select {
	case got := <-answer:
		t.Fatalf("answered %d %s while the acks were lost", got.status, got.raw)
	default:
	}
	p.acksLost.Store(false)
	got := <-answer
	if got.status != http.StatusOK {
		t.Fatalf("answer %d %s", got.status, got.raw)
	}
	for _, ch := range []string{"lost", "cache-lost"} {
		if n := f.count(t, "app1", ch); n != 1 {
			t.Errorf("%s holds %d messages, want 1", ch, n)
		}
	}
	cache, err := f.js.Stream(context.Background(), names.CacheStream("app1"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := cache.GetLastMsgForSubject(context.Background(), names.CacheSubject("app1", "cache-lost"))
	if err != nil {
		t.Fatalf("the cache copy was not written: %v", err)
	}
	if seq := m.Header.Get(names.HeaderEventSequence); seq != f.seqOf(t, "cache-lost") {
		t.Errorf("cache copy of events sequence %q, want %s", seq, f.seqOf(t, "cache-lost"))
	}
}

// freezeProxy forwards TCP to a NATS server; frozen, it drops everything in
// both directions while keeping the connections open; with acksLost, only
// what the server sends (acknowledgements among it).
type freezeProxy struct {
	ln       net.Listener
	frozen   atomic.Bool
	acksLost atomic.Bool
}

func newFreezeProxy(t *testing.T, upstream string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln}
	var (
		mu    sync.Mutex
		open  []net.Conn
		pipes sync.WaitGroup
	)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, u)
			mu.Unlock()
			pipes.Add(2)
			go func() { defer pipes.Done(); p.pipe(u, c, nil) }()
			go func() { defer pipes.Done(); p.pipe(c, u, &p.acksLost) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		pipes.Wait()
	})
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) pipe(dst, src net.Conn, drop *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		if p.frozen.Load() || (drop != nil && drop.Load()) {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}
