package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/signing"
)

// BenchmarkTriggerCacheChannel compares POST /apps/{id}/events on a plain
// channel with a cache channel, whose event is also written to the cache
// stream (after the events stream's ack, before the answer).
func BenchmarkTriggerCacheChannel(b *testing.B) {
	srv := natstest.Start(b)
	a := startAPI(b, natstest.Connect(b, srv), testApps, api.Options{})
	ts := httptest.NewServer(a.Handler())
	b.Cleanup(ts.Close)
	for _, channel := range []string{"prices", "cache-prices"} {
		b.Run(channel, func(b *testing.B) {
			body := `{"name":"price","data":"{\"eur\":1.0842}","channel":"` + channel + `"}`
			q := signing.SignRequest(http.MethodPost, "/apps/app1/events", nil, []byte(body), testApps[0].Key, testApps[0].Secret, now)
			u := ts.URL + "/apps/app1/events?" + q
			for b.Loop() {
				resp, err := http.Post(u, "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
