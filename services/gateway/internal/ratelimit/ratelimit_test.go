package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name    string
		rate    int
		at      []time.Duration // offsets from t0 of each attempt
		allowed int
	}{
		{"burst up to the rate", 10, repeat(0, 15), 10},
		{"refills over a second", 2, []time.Duration{0, 0, 0, time.Second, time.Second, time.Second}, 4},
		{"half a second refills half", 4, append(repeat(0, 4), repeat(500*time.Millisecond, 4)...), 6},
		{"never more than the rate after a long pause", 3, append([]time.Duration{0}, repeat(time.Hour, 5)...), 4},
		{"zero rate allows nothing", 0, repeat(0, 3), 0},
		{"clock going back does not add tokens", 1, []time.Duration{time.Second, 0, 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.rate)
			got := 0
			for _, off := range tt.at {
				if b.Allow(t0.Add(off)) {
					got++
				}
			}
			if got != tt.allowed {
				t.Errorf("allowed %d, want %d", got, tt.allowed)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestBurst(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBurst(10, 30)
	for i := range 30 {
		if !b.Allow(now) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if b.Allow(now) {
		t.Fatal("allowed past the burst")
	}
	// A second refills the rate, not the burst.
	now = now.Add(time.Second)
	for i := range 10 {
		if !b.Allow(now) {
			t.Fatalf("token %d after a second refused", i)
		}
	}
	if b.Allow(now) {
		t.Fatal("allowed past the rate")
	}
}
