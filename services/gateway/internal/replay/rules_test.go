package replay

import (
	"slices"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/position"
)

func TestMergerRestart(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	stored := func(seq, last uint64, when time.Time) Event {
		return Event{Seq: seq, LastSeq: last, Time: when}
	}
	tests := []struct {
		name    string
		ev      Event
		restart bool
		deliver []uint64
	}{
		{"newer sequence: no restart", stored(11, 10, at.Add(time.Second)), false, []uint64{11}},
		{"older sequence stored before: sent already", stored(9, 8, at.Add(-time.Second)), false, nil},
		{"older sequence stored later: the stream was recreated", stored(1, 0, at.Add(time.Second)), true, []uint64{1}},
		{"same millisecond: not told apart", stored(1, 0, at), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMerger(position.Position{Epoch: 7, Seq: 5})
			m.Add(nil, stored(10, 5, at))
			m.Add(nil, stored(13, 12, at)) // waits on a hole of the old stream
			if got := m.Restart(&tt.ev); got != tt.restart {
				t.Fatalf("Restart = %v, want %v", got, tt.restart)
			}
			out := m.Add(nil, tt.ev)
			if got := seqs(out); !slices.Equal(got, tt.deliver) {
				t.Fatalf("delivered %v, want %v", got, tt.deliver)
			}
			if tt.restart && (m.Pending() != 0 || m.Last().Epoch != 7) {
				t.Fatalf("after a restart: %d pending, epoch %d; want none waiting on the old stream, epoch kept", m.Pending(), m.Last().Epoch)
			}
		})
	}
}

func TestMergerSkipAll(t *testing.T) {
	m := NewMerger(position.Position{Seq: 10})
	m.Add(nil, ev(13, 12), ev(17, 16), ev(18, 17))
	out := m.SkipAll(nil)
	if got := seqs(out); !slices.Equal(got, []uint64{13, 17, 18}) {
		t.Fatalf("delivered %v, want 13 17 18", got)
	}
	if _, _, gap := m.Gap(); gap || m.Skipped() != 2 {
		t.Fatalf("gap left %v, skipped %d; want none left, 2 holes given up", gap, m.Skipped())
	}
}

func TestHold(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		limit int
		ok    []bool
	}{
		{"within the limit", []int{3, 3, 4}, 10, []bool{true, true, true}},
		{"over the limit drops all", []int{6, 5}, 10, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Hold[int]
			for i, n := range tt.sizes {
				if got := h.Add(i, n, tt.limit); got != tt.ok[i] {
					t.Fatalf("Add #%d = %v, want %v", i, got, tt.ok[i])
				}
			}
			want := len(tt.sizes)
			if !tt.ok[len(tt.ok)-1] {
				want = 0
			}
			if h.Len() != want {
				t.Fatalf("holds %d, want %d", h.Len(), want)
			}
			if got := h.Take(); len(got) != want || h.Len() != 0 {
				t.Fatalf("Take gave %d and left %d", len(got), h.Len())
			}
			if !h.Add(0, tt.limit, tt.limit) {
				t.Fatal("an emptied hold refused an item within the limit")
			}
		})
	}
}
