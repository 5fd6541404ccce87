package stats

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value lies in its bucket, buckets tile the line without gaps,
	// and a bucket is never wider than 1/128 of its lower bound.
	prevEnd := uint64(0)
	for i := 0; i < numBuckets; i++ {
		lo, w := bucketRange(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevEnd)
		}
		if lo >= 2*subBuckets && w*subBuckets > lo {
			t.Fatalf("bucket %d [%d,+%d) is wider than 1/%d", i, lo, w, subBuckets)
		}
		for _, v := range []uint64{lo, lo + w - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevEnd = lo + w
		if prevEnd == 0 { // wrapped past 2^64: the last bucket
			break
		}
	}
}

func TestQuantile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
		tol    float64 // relative
	}{
		{"empty", nil, 0.5, 0, 0},
		{"single", []time.Duration{5 * time.Millisecond}, 0.99, 5 * time.Millisecond, 0},
		{"small exact", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5, 0},
		{"p90 nearest rank", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9, 0},
		{"max is exact", []time.Duration{time.Millisecond, 1234567 * time.Microsecond}, 1, 1234567 * time.Microsecond, 0},
		{"min is exact", []time.Duration{999999, 5 * time.Second}, 0, 999999, 0},
		{"large within 1%", uniform(1000, time.Millisecond), 0.5, 500 * time.Millisecond, 0.01},
		{"p99 within 1%", uniform(1000, time.Millisecond), 0.99, 990 * time.Millisecond, 0.01},
		{"negative counts as zero", []time.Duration{-5, -1}, 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vs := slices.Clone(tc.values)
			rand.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
			for _, v := range vs {
				h.Record(v)
			}
			got := h.Quantile(tc.q)
			diff := float64(got - tc.want)
			if diff < 0 {
				diff = -diff
			}
			if diff > tc.tol*float64(tc.want) {
				t.Fatalf("Quantile(%v) = %v, want %v (±%.0f%%)", tc.q, got, tc.want, tc.tol*100)
			}
		})
	}
}

func uniform(n int, step time.Duration) []time.Duration {
	vs := make([]time.Duration, n)
	for i := range vs {
		vs[i] = time.Duration(i+1) * step
	}
	return vs
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				a.Record(time.Duration(g*1000+i+1) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	b.Record(time.Hour)
	a.Merge(&b)
	if a.Count() != 4001 {
		t.Fatalf("Count = %d, want 4001", a.Count())
	}
	if a.Max() != time.Hour || a.Min() != time.Microsecond {
		t.Fatalf("Min, Max = %v, %v", a.Min(), a.Max())
	}
	var empty Histogram
	a.Merge(&empty)
	if a.Min() != time.Microsecond {
		t.Fatalf("merging an empty histogram moved Min to %v", a.Min())
	}
}

// sent is one event on the trigger side: its send time and the time of its
// 200, 0 when the request failed.
type sent struct{ at, ack int64 }

// sequential are events sent one after the other: each answered before the
// next starts.
func sequential(n int) []sent {
	evs := make([]sent, n)
	for i := range evs {
		evs[i] = sent{at: int64(10 * i), ack: int64(10*i + 5)}
	}
	return evs
}

func ledger(evs []sent) *Channel {
	ch := &Channel{AckedAt: make([]int64, len(evs))}
	for seq, e := range evs {
		if e.ack != 0 {
			ch.Ack(uint64(seq), e.ack)
		}
	}
	return ch
}

func TestTally(t *testing.T) {
	failed := sequential(3)
	failed[1].ack = 0
	overlapping := []sent{{at: 0, ack: 5}, {at: 10, ack: 30}, {at: 20, ack: 25}}
	tests := []struct {
		name     string
		sent     []sent
		received []uint64
		foreign  int
		want     Tally
	}{
		{"all in order", sequential(4), []uint64{0, 1, 2, 3},
			0, Tally{Expected: 4, Delivered: 4}},
		{"nothing received", sequential(3), nil,
			0, Tally{Expected: 3, Lost: 3}},
		{"loss in the middle", sequential(4), []uint64{0, 2, 3},
			0, Tally{Expected: 4, Delivered: 3, Lost: 1}},
		{"duplicate", sequential(2), []uint64{0, 1, 1, 1},
			0, Tally{Expected: 2, Delivered: 2, Duplicates: 2}},
		{"swapped pair of sequential sends", sequential(4), []uint64{0, 2, 1, 3},
			0, Tally{Expected: 4, Delivered: 4, Reordered: 1, OutOfOrder: 1}},
		{"late straggler", sequential(4), []uint64{1, 2, 3, 0},
			0, Tally{Expected: 4, Delivered: 4, Reordered: 1, OutOfOrder: 1}},
		{"overlapping sends may swap", overlapping, []uint64{0, 2, 1},
			0, Tally{Expected: 3, Delivered: 3, Reordered: 1}},
		{"failed trigger still delivered", failed, []uint64{0, 1, 2},
			0, Tally{Expected: 2, Delivered: 2, Unexpected: 1}},
		{"foreign channel", sequential(1), []uint64{0},
			2, Tally{Expected: 1, Delivered: 1, Foreign: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Receiver
			for _, s := range tc.received {
				r.Record(s, tc.sent[s].at)
			}
			for range tc.foreign {
				r.Foreign()
			}
			var got Tally
			got.Add(&r, ledger(tc.sent))
			if got != tc.want {
				t.Fatalf("Tally = %+v, want %+v", got, tc.want)
			}
			if r.Received() != uint64(len(tc.received)) {
				t.Fatalf("Received = %d, want %d", r.Received(), len(tc.received))
			}
		})
	}
}

func TestTallySums(t *testing.T) {
	ch := ledger(sequential(100))
	var total Tally
	for c := range 3 {
		var r Receiver
		for i := range uint64(100 - c) {
			r.Record(i, int64(10*i))
		}
		total.Add(&r, ch)
	}
	want := Tally{Expected: 300, Delivered: 297, Lost: 3}
	if total != want {
		t.Fatalf("Tally = %+v, want %+v", total, want)
	}
}

func TestReorderBound(t *testing.T) {
	// Everything after the first arrives reversed: only maxLate receipts
	// are kept for checking, the rest are counted as unchecked.
	n := maxLate + 10
	evs := sequential(n + 1)
	var r Receiver
	r.Record(uint64(n), evs[n].at)
	for i := n - 1; i >= 0; i-- {
		r.Record(uint64(i), evs[i].at)
	}
	var got Tally
	got.Add(&r, ledger(evs))
	want := Tally{Expected: uint64(n + 1), Delivered: uint64(n + 1), Reordered: uint64(n), OutOfOrder: maxLate, Unchecked: 10}
	if got != want {
		t.Fatalf("Tally = %+v, want %+v", got, want)
	}
}
