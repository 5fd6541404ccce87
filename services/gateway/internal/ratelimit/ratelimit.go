// Package ratelimit holds the token bucket that limits client events and
// other client frames per connection.
package ratelimit

import "time"

// Bucket allows rate events per second on average and bursts of up to burst
// (rate unless made with NewBurst).
// It belongs to one connection's reader and is not safe for concurrent use.
type Bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// New returns a full bucket. A rate of 0 or less allows nothing.
func New(perSecond int) Bucket {
	r := float64(max(perSecond, 0))
	return Bucket{rate: r, burst: r, tokens: r}
}

// NewBurst returns a full bucket of burst tokens, refilled at perSecond.
func NewBurst(perSecond, burst int) Bucket {
	return Bucket{rate: float64(max(perSecond, 0)), burst: float64(max(burst, 0)), tokens: float64(max(burst, 0))}
}

// Allow takes one token if there is one.
func (b *Bucket) Allow(now time.Time) bool {
	if !b.last.IsZero() {
		if d := now.Sub(b.last); d > 0 {
			b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
