package replay

import (
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
)

func TestLast(t *testing.T) {
	e := newEnv(t, appconf.App{})
	e.publish("a", "x", "1", "")
	a2 := e.publish("a", "y", "2", "1.1")
	e.publish("b", "x", "3", "")

	p, ev, ok, err := e.eng.Last(e.ctx, e.app.ID, "a")
	if err != nil || !ok {
		t.Fatalf("Last: %v, found %v", err, ok)
	}
	if p.Seq != a2 || p.Epoch != e.epoch() || ev.Seq != a2 || ev.Name != "y" || string(ev.Data) != "2" || ev.Exclude != "1.1" {
		t.Fatalf("Last = %+v, %+v", p, ev)
	}
	cur, err := e.eng.CurrentPosition(e.ctx, e.app.ID, "a")
	if err != nil || cur != p {
		t.Fatalf("CurrentPosition = %+v, %v; Last said %+v", cur, err, p)
	}
	p, _, ok, err = e.eng.Last(e.ctx, e.app.ID, "quiet")
	if err != nil || ok || p.Seq != e.streamInfo().State.LastSeq {
		t.Fatalf("Last of a quiet channel = %+v, %v, %v", p, ok, err)
	}
}

func TestCached(t *testing.T) {
	e := newEnv(t, appconf.App{})
	if _, _, err := e.eng.Cached(e.ctx, e.app.ID, "cache-a"); err == nil {
		t.Fatal("no error without a cache stream")
	}
	if _, err := events.EnsureCacheStream(e.ctx, e.js, e.app, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.eng.Cached(e.ctx, e.app.ID, "cache-a"); err != nil || ok {
		t.Fatalf("empty cache: %v, %v", ok, err)
	}
	for i, data := range []string{"1", "2"} {
		ev := events.Event{AppID: e.app.ID, Channel: "cache-a", Name: "price", Data: data, ExcludeSocketID: "1.1"}
		if _, err := e.js.PublishMsg(e.ctx, ev.CacheMsg(uint64(40+i))); err != nil {
			t.Fatal(err)
		}
	}
	ev, ok, err := e.eng.Cached(e.ctx, e.app.ID, "cache-a")
	if err != nil || !ok {
		t.Fatalf("Cached: %v, %v", ok, err)
	}
	if ev.Seq != 41 || ev.Name != "price" || string(ev.Data) != "2" || ev.Exclude != "1.1" || ev.Time.IsZero() {
		t.Fatalf("Cached = %+v", ev)
	}
}
