package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/position"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// channelInfo asks GET /apps/app1/channels/{channel} with info.
func (f *fixture) channelInfo(t *testing.T, channel, info string) resp {
	t.Helper()
	path := "/apps/app1/channels/" + url.PathEscape(channel)
	var params url.Values
	if info != "" {
		params = url.Values{"info": {info}}
	}
	q := signing.SignRequest(http.MethodGet, path, params, nil, testApps[0].Key, testApps[0].Secret, now)
	return f.do(t, req{method: http.MethodGet, path: path, query: q})
}

func (f *fixture) streamInfo(t *testing.T) *jetstream.StreamInfo {
	t.Helper()
	s, err := f.js.Stream(context.Background(), names.EventsStream("app1"))
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo()
}

func TestChannelPosition(t *testing.T) {
	f := newFixture(t, "")
	trigger := func(channel, data string) {
		t.Helper()
		if got := f.do(t, req{path: "/apps/app1/events", body: `{"name":"e","data":"` + data + `","channel":"` + channel + `"}`}); got.status != 200 {
			t.Fatalf("trigger: %d %s", got.status, got.raw)
		}
	}
	trigger("private-orders.42", "1")
	trigger("private-orders.42", "2")
	trigger("other", "3")
	epoch := position.EpochOf(f.streamInfo(t).Created)

	tests := []struct {
		name, channel string
		wantSeq       uint64
	}{
		{"channel with events", "private-orders.42", 2},
		{"channel without events", "quiet", 3}, // the stream's last sequence
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.channelInfo(t, tt.channel, "position")
			if got.status != 200 || len(got.body) != 1 {
				t.Fatalf("%d %s", got.status, got.raw)
			}
			p, err := position.Parse(got.body["position"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if p.Epoch != epoch || p.Seq != tt.wantSeq || p.Time.IsZero() {
				t.Fatalf("position %+v, want epoch %d seq %d", p, epoch, tt.wantSeq)
			}
		})
	}

	refusals := []struct {
		name, channel, info string
		status              int
		msg                 string
	}{
		{"position with an attribute the channel lacks", "orders", "position,user_count", 400, "presence channels"},
		{"bad channel name", "bad channel", "position", 400, "channel name"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			got := f.channelInfo(t, tt.channel, tt.info)
			if got.status != tt.status || !strings.Contains(got.raw, tt.msg) {
				t.Fatalf("%d %s, want %d %q", got.status, got.raw, tt.status, tt.msg)
			}
		})
	}
}

// Events of cache channels are also stored in the cache stream, with their
// events stream sequence; other channels' are not.
func TestCacheChannelEventsAreCached(t *testing.T) {
	f := newFixture(t, "")
	cache, err := f.js.Stream(context.Background(), names.CacheStream("app1"))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"name":"price","data":"{\"v\":1}","channels":["cache-eur","private-cache-usd","plain"],"socket_id":"1.2"}`
	if got := f.do(t, req{path: "/apps/app1/events", body: body}); got.status != 200 {
		t.Fatalf("trigger: %d %s", got.status, got.raw)
	}
	batch := `{"batch":[{"name":"price","data":"{\"v\":2}","channel":"cache-eur"},{"name":"price","data":"{\"v\":3}","channel":"cache-eur"}]}`
	if got := f.do(t, req{path: "/apps/app1/batch_events", body: batch}); got.status != 200 {
		t.Fatalf("batch: %d %s", got.status, got.raw)
	}
	for _, tc := range []struct{ channel, data, exclude string }{
		{"cache-eur", `{"v":3}`, ""},
		{"private-cache-usd", `{"v":1}`, "1.2"},
	} {
		m, err := cache.GetLastMsgForSubject(context.Background(), names.CacheSubject("app1", tc.channel))
		if err != nil {
			t.Fatalf("%s: %v", tc.channel, err)
		}
		checkMsg(t, m, "price", tc.data, tc.exclude)
		if seq := m.Header.Get(names.HeaderEventSequence); seq != f.seqOf(t, tc.channel) {
			t.Errorf("%s: events sequence %q, want %s", tc.channel, seq, f.seqOf(t, tc.channel))
		}
	}
	if _, err := cache.GetLastMsgForSubject(context.Background(), names.CacheSubject("app1", "plain")); err == nil {
		t.Error("a plain channel's event was cached")
	}

	// A retried request (same idempotency key) does not store its copy
	// again over a newer event.
	key := http.Header{"X-Idempotency-Key": {"k-1"}}
	old := `{"name":"price","data":"old","channel":"cache-gbp"}`
	for _, b := range []string{old, `{"name":"price","data":"new","channel":"cache-gbp"}`, old} {
		h := key
		if strings.Contains(b, "new") {
			h = nil
		}
		if got := f.do(t, req{path: "/apps/app1/events", body: b, header: h}); got.status != 200 {
			t.Fatalf("trigger: %d %s", got.status, got.raw)
		}
	}
	m, err := cache.GetLastMsgForSubject(context.Background(), names.CacheSubject("app1", "cache-gbp"))
	if err != nil || string(m.Data) != "new" {
		t.Fatalf("cached after a retry: %v %v", m, err)
	}
}

// seqOf is the events stream sequence of a channel's last event.
func (f *fixture) seqOf(t *testing.T, channel string) string {
	t.Helper()
	return strconv.FormatUint(f.stored(t, "app1", channel).Sequence, 10)
}
