package events

import (
	"context"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
)

func TestCacheStreamKeepsTheLastEventOfEachChannel(t *testing.T) {
	nc, js, app := startWithStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		if _, err := EnsureCacheStream(ctx, js, app, StreamOptions{}); err != nil {
			t.Fatalf("EnsureCacheStream #%d: %v", i, err)
		}
	}
	live, err := nc.SubscribeSync(names.LiveSubject(app.ID, ">"))
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range []string{`{"v":1}`, `{"v":2}`} {
		ev := Event{AppID: app.ID, Channel: "cache-price.eur", Name: "price", Data: data, ExcludeSocketID: "1.2"}
		if _, err := js.PublishMsg(ctx, ev.CacheMsg(uint64(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	other := Event{AppID: app.ID, Channel: "cache-price.usd", Name: "price", Data: `{"v":9}`}
	if _, err := js.PublishMsg(ctx, other.CacheMsg(30)); err != nil {
		t.Fatal(err)
	}

	s, err := js.Stream(ctx, names.CacheStream(app.ID))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("cache stream holds %d messages, want one per channel", n)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxAge != CacheTTL || cfg.MaxMsgsPerSubject != 1 || cfg.RePublish != nil || !cfg.AllowDirect {
		t.Fatalf("config %+v", cfg)
	}
	m, err := s.GetLastMsgForSubject(ctx, names.CacheSubject(app.ID, "cache-price.eur"))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"v":2}` || m.Header.Get(names.HeaderEvent) != "price" ||
		m.Header.Get(names.HeaderExclude) != "1.2" || m.Header.Get(names.HeaderEventSequence) != "11" {
		t.Fatalf("last cached message %+v", m)
	}
	if msg, err := live.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("the cache stream republished %s", msg.Subject)
	}
}
