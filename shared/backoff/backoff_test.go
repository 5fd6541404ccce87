package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDoublingWait(t *testing.T) {
	d := Doubling{First: 100 * time.Millisecond, Max: 2 * time.Second}
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{4, 1600 * time.Millisecond},
		{5, 2 * time.Second},
		{1000, 2 * time.Second},
	} {
		if got := d.Wait(tt.n); got != tt.want {
			t.Errorf("Wait(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
	if got := (Doubling{First: time.Minute, Max: time.Second}).Wait(0); got != time.Second {
		t.Errorf("a first wait above the cap: Wait(0) = %s, want the cap", got)
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a wait that passed was reported cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("a wait whose context ended was reported whole")
	}
}
