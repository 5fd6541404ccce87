package statuspage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/trigger/statuspage"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events/eventstest"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/status"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const token = "admin-token-0123456789"

// startNATS is an embedded NATS and a connection to it, with the tests'
// one app, "shop".
func startNATS(t *testing.T) (*nats.Conn, *appconf.Registry) {
	t.Helper()
	nc := natstest.Connect(t, natstest.Start(t))
	apps, err := appconf.NewRegistry([]appconf.App{{ID: "shop", Key: "shop-key", Secret: "0123456789abcdef0123"}})
	if err != nil {
		t.Fatal(err)
	}
	return nc, apps
}

// servePage runs the status page with opt behind an HTTP test server,
// both closed when the test ends.
func servePage(t *testing.T, opt statuspage.Options) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := statuspage.New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(page.Close)
	hs := httptest.NewServer(page.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func TestStatusPage(t *testing.T) {
	nc, apps := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := apps.ByID("shop")
	eventstest.Ensure(t, js, app)
	if _, err := statuspage.New(ctx, statuspage.Options{NC: nc, Apps: apps, Token: "short"}); err == nil {
		t.Error("a short token was accepted")
	}
	hs := servePage(t, statuspage.Options{NC: nc, Apps: apps, Token: token})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(path string, set func(*http.Request)) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		if set != nil {
			set(req)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}

	// Without the token, or with a wrong one: 401 with a JSON error.
	for _, c := range []struct {
		path string
		set  func(*http.Request)
	}{
		{statuspage.Path, nil}, {statuspage.Path + "/data.json", nil}, {statuspage.Path + "/app.js", nil},
		{statuspage.Path + "/data.json", bearer("wrong-token-0123456789")},
		{statuspage.Path + "?token=wrong-token-0123456789", nil},
	} {
		res := get(c.path, c.set)
		var body struct{ Error string }
		if res.StatusCode != http.StatusUnauthorized || json.NewDecoder(res.Body).Decode(&body) != nil || body.Error == "" {
			t.Errorf("GET %s: %d %q, want 401 with an error", c.path, res.StatusCode, body.Error)
		}
	}

	// ?token= sets a cookie and sends the browser to the bare address.
	res := get(statuspage.Path+"?token="+token, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != statuspage.Path || len(res.Cookies()) != 1 {
		t.Fatalf("?token=: %d to %q with %d cookies", res.StatusCode, res.Header.Get("Location"), len(res.Cookies()))
	}
	cookie := res.Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie %+v is not HttpOnly and SameSite=Strict", cookie)
	}
	res = get(statuspage.Path, func(r *http.Request) { r.AddCookie(cookie) })
	html, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(html), "status/app.js") {
		t.Fatalf("page with the cookie: %d %.100s", res.StatusCode, html)
	}
	for _, asset := range []string{"/app.js", "/app.css"} {
		if res := get(statuspage.Path+asset, bearer(token)); res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", asset, res.StatusCode)
		}
	}

	// A gateway's figures, twice: the page shows them and the rate.
	start := time.Now()
	for i, sent := range []uint64{100, 300} {
		b, _ := json.Marshal(status.Gateway{ID: "gw-1", Started: start, Time: start.Add(time.Duration(i) * 2 * time.Second),
			Connections: 3, Apps: map[string]int64{"shop": 3}, MessagesSent: sent, Resumes: 2, NATS: "CONNECTED"})
		if err := nc.Publish(status.Subject, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var snap statuspage.Snapshot
	if !poll.Within(poll.Patience, func() bool {
		res := get(statuspage.Path+"/data.json", bearer(token))
		snap = statuspage.Snapshot{}
		err := json.NewDecoder(res.Body).Decode(&snap)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return len(snap.Gateways) == 1 && snap.Gateways[0].MessagesPerSecond == 100
	}) {
		t.Fatalf("figures not shown: %+v", snap)
	}
	if g := snap.Gateways[0]; g.Connections != 3 || g.Resumes != 2 || g.Gone {
		t.Errorf("gateway %+v", g)
	}
	if len(snap.Apps) != 1 || snap.Apps[0].Connections != 3 {
		t.Errorf("apps %+v", snap.Apps)
	}
	if len(snap.Streams) != 1 || snap.Streams[0].App != "shop" || snap.Streams[0].Replicas != 1 {
		t.Errorf("streams %+v", snap.Streams)
	}
}

func TestLiveTail(t *testing.T) {
	nc, apps := startNATS(t)
	for _, payloads := range []bool{false, true} {
		t.Run(fmt.Sprintf("payloads=%v", payloads), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hs := servePage(t, statuspage.Options{NC: nc, Apps: apps, Token: token, Payloads: payloads})

			res, err := http.Get(hs.URL + statuspage.Path + "/tail?app=shop&channel=orders")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("tail without the token: %d", res.StatusCode)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL+statuspage.Path+"/tail?app=shop&channel=orders", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("tail: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
			}
			r := bufio.NewReader(res.Body)
			if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ": tailing") {
				t.Fatalf("first line %q", line)
			}
			m := nats.NewMsg(names.LiveSubject("shop", "orders"))
			m.Header.Set(names.HeaderEvent, "OrderShipped")
			m.Data = []byte(`{"id":42}`)
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				data, ok := strings.CutPrefix(strings.TrimSpace(line), "data: ")
				if !ok {
					continue
				}
				var l statuspage.TailLine
				if err := json.Unmarshal([]byte(data), &l); err != nil {
					t.Fatal(err)
				}
				if l.Event != "OrderShipped" || l.Kind != "event" || l.Bytes != 9 {
					t.Errorf("line %+v", l)
				}
				if payloads != (l.Data == `{"id":42}`) {
					t.Errorf("data %q with payloads=%v", l.Data, payloads)
				}
				return
			}
		})
	}
}
