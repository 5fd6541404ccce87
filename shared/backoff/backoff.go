// Package backoff is the one rule for the waits between the tries of a
// retry: the first wait, then twice the last, up to a cap; and a wait that
// ends early when its context does.
package backoff

import (
	"context"
	"time"
)

// Doubling is a retry's waits: First after the first failed try, then twice
// the last, never more than Max.
type Doubling struct {
	First, Max time.Duration
}

// Wait is the wait after failed try n (0 for the first).
func (d Doubling) Wait(n int) time.Duration {
	w := d.First
	for i := 0; i < n && w < d.Max; i++ {
		w *= 2
	}
	return min(w, d.Max)
}

// Sleep waits d, or less when ctx ends first; it reports whether the whole
// wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
