package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/signing"
)

// FuzzAPIRequest sends correctly signed requests with arbitrary paths,
// query parameters and bodies to the API. Whatever they hold, the answer is
// a JSON object, with an "error" member unless it is a 2xx, and never a 500.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range []struct {
		get               bool
		path, query, body string
	}{
		{false, "/apps/app1/events", "", `{"name":"e","channels":["c"],"data":"x"}`},
		{false, "/apps/app1/events", "", `{"name":"e","channel":"private-encrypted-x","data":"{}","socket_id":"1.2","info":"user_count"}`},
		{false, "/apps/app1/batch_events", "", `{"batch":[{"name":"e","channel":"c","data":"1"},{"name":"f","channel":"presence-c","data":{}}]}`},
		{false, "/apps/small/events", "", `{"name":"e","channels":["a","b"],"data":"` + strings.Repeat("x", 200) + `"}`},
		{true, "/apps/app1/channels", "filter_by_prefix=presence-&info=user_count,subscription_count", ""},
		{true, "/apps/app1/channels/cache-x", "info=position,cache,occupied", ""},
		{true, "/apps/app1/channels/presence-room/users", "", ""},
		{false, "/apps/app1/users/42/terminate_connections", "", "{}"},
		{true, "/apps/app2/channels/%2F..%2F", "info=%ff", ""},
		{false, "/apps/off/events", "auth_key=x&body_md5=y", `{"name":"e","channels":["c"],"data":"x"}`},
		{false, "/apps/app1/events", "", `{"name":"e","channels":[` + strings.Repeat(`[`, 500) + `]}`},
	} {
		f.Add(s.get, s.path, s.query, s.body)
	}
	fx := newFixture(f, "")
	client := &http.Client{Timeout: 15 * time.Second}
	f.Fuzz(func(t *testing.T, get bool, path, query, body string) {
		method := http.MethodPost
		if get {
			method = http.MethodGet
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		params, _ := url.ParseQuery(query)
		u := url.URL{Scheme: "http", Host: fx.ts.Listener.Addr().String(), Path: path,
			RawQuery: signing.SignRequest(method, path, params, []byte(body), testApps[0].Key, testApps[0].Secret, now)}
		hr, err := http.NewRequest(method, u.String(), strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		res, err := client.Do(hr)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u.String(), err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusInternalServerError {
			t.Fatalf("%s %s: 500 %s", method, u.String(), b)
		}
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: answer %d is not a JSON object: %q", method, u.String(), res.StatusCode, b)
		}
		if _, ok := out["error"].(string); res.StatusCode >= 300 && !ok {
			t.Fatalf("%s %s: answer %d without an error: %s", method, u.String(), res.StatusCode, b)
		}
	})
}
