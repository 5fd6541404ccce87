package replay

import (
	"slices"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/appconf"
)

// pagedEngine is an engine of e's NATS connection that reads pageBytes at a
// time.
func (e *env) pagedEngine(pageBytes int) *Engine {
	e.t.Helper()
	eng, err := New(e.nc, Options{PageBytes: pageBytes})
	if err != nil {
		e.t.Fatal(err)
	}
	return eng
}

// readPages returns the events of h, page by page.
func readPages(t *testing.T, e *env, h History) [][]Event {
	t.Helper()
	pages := [][]Event{h.Events}
	for h.More() {
		evs, err := h.Next(e.ctx)
		if err != nil {
			t.Fatalf("Next after %d pages: %v", len(pages), err)
		}
		pages = append(pages, evs)
	}
	return pages
}

func TestHistoryInPages(t *testing.T) {
	e := newEnv(t, appconf.App{})
	data := strings.Repeat("d", 1000)
	var want []uint64
	for range 40 {
		want = append(want, e.publish("a", "x", data, ""))
		e.publish("b", "x", data, "")
	}
	const pageBytes = 4000
	eng := e.pagedEngine(pageBytes)
	check := func(t *testing.T, h History, want []uint64) {
		t.Helper()
		var got []Event
		for i, page := range readPages(t, e, h) {
			// The server ends a page once it sent pageBytes: at most one
			// event past the bound.
			if len(page) > pageBytes/len(data)+1 {
				t.Fatalf("page %d holds %d events of %d bytes, bound %d bytes", i, len(page), len(data), pageBytes)
			}
			got = append(got, page...)
		}
		if !slices.Equal(seqs(got), want) {
			t.Fatalf("got %v, want %v", seqs(got), want)
		}
		prev := h.Start.Seq
		for _, ev := range got {
			if ev.LastSeq != prev {
				t.Fatalf("event %d: LastSeq %d, want %d", ev.Seq, ev.LastSeq, prev)
			}
			prev = ev.Seq
		}
	}
	t.Run("resume", func(t *testing.T) {
		h, err := eng.Resume(e.ctx, e.app.ID, "a", e.at(want[4]))
		if err != nil {
			t.Fatal(err)
		}
		if !h.More() {
			t.Fatal("a 35-event resume fit in one page of 4,000 bytes")
		}
		check(t, h, want[5:])
	})
	t.Run("rewind", func(t *testing.T) {
		h, err := eng.Rewind(e.ctx, e.app.ID, "a", 30)
		if err != nil {
			t.Fatal(err)
		}
		check(t, h, want[10:])
	})
	t.Run("unpaged engine reads at once", func(t *testing.T) {
		h, err := e.eng.Resume(e.ctx, e.app.ID, "a", e.at(want[4]))
		if err != nil {
			t.Fatal(err)
		}
		if h.More() || !slices.Equal(seqs(h.Events), want[5:]) {
			t.Fatalf("got %v (more %v), want %v at once", seqs(h.Events), h.More(), want[5:])
		}
	})
}

// A client that reads slower than the window moves: the page that fell out
// of it fails with WindowExceeded, never with a hole.
func TestHistoryPageOutOfTheWindow(t *testing.T) {
	e := newEnv(t, appconf.App{ReplayMaxEvents: 10})
	var a []uint64
	for range 10 {
		a = append(a, e.publish("a", "x", "0123456789", ""))
	}
	eng := e.pagedEngine(1)
	h, err := eng.Resume(e.ctx, e.app.ID, "a", e.at(a[0]-1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(h.Events), a[:1]) || !h.More() {
		t.Fatalf("first page %v (more %v), want %v", seqs(h.Events), h.More(), a[:1])
	}
	// Five more events push a[0] to a[4] out of the channel's cap: a[1],
	// the next page, is gone.
	for range 5 {
		e.publish("a", "x", "0123456789", "")
	}
	_, err = h.Next(e.ctx)
	wantReason(t, err, WindowExceeded)
	if h.More() {
		t.Error("a failed history has more pages")
	}
}
