package publish

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herald-ws/herald/shared/events"
)

func TestWaves(t *testing.T) {
	// evs builds events from "channel/data" words.
	evs := func(spec string) []events.Event {
		var out []events.Event
		for _, w := range strings.Fields(spec) {
			ch, data, _ := strings.Cut(w, "/")
			out = append(out, events.Event{Channel: ch, Data: data})
		}
		return out
	}
	many := func(channels, each int) string {
		var b strings.Builder
		for k := range each {
			for c := range channels {
				fmt.Fprintf(&b, "c%d/%d ", c, k)
			}
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, in string
		want     []string // nil: one wave, evs itself
	}{
		{"one event", "a/1", nil},
		{"distinct channels", "a/1 b/1 c/1", nil},
		{"one channel", "a/1 a/2 a/3", []string{"a/1", "a/2", "a/3"}},
		{"interleaved", "a/1 b/1 a/2 c/1 b/2 a/3", []string{"a/1 b/1 c/1", "a/2 b/2", "a/3"}},
		{"repeat late", "a/1 b/1 c/1 b/2", []string{"a/1 b/1 c/1", "b/2"}},
		{"many distinct, mapped", many(20, 1), nil},
		{"many repeated, mapped", many(10, 2), []string{many(10, 1), strings.ReplaceAll(many(10, 1), "/0", "/1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := waves(evs(tc.in))
			if tc.want == nil {
				if got != nil {
					t.Fatalf("%d waves, want one (nil)", len(got))
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d waves, want %d", len(got), len(tc.want))
			}
			for k, w := range got {
				var words []string
				for _, ev := range w {
					words = append(words, ev.Channel+"/"+ev.Data)
				}
				if g, want := strings.Join(words, " "), strings.Join(strings.Fields(tc.want[k]), " "); g != want {
					t.Errorf("wave %d = %q, want %q", k, g, want)
				}
			}
		})
	}
}
