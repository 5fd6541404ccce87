// Package ratelimit holds the token bucket that limits client events per
// connection.
package ratelimit

import "time"

// Bucket allows rate events per second on average and bursts of up to rate.
// It belongs to one connection's reader and is not safe for concurrent use.
type Bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

// New returns a full bucket. A rate of 0 or less allows nothing.
func New(perSecond int) Bucket {
	r := float64(max(perSecond, 0))
	return Bucket{rate: r, tokens: r}
}

// Allow takes one token if there is one.
func (b *Bucket) Allow(now time.Time) bool {
	if !b.last.IsZero() {
		if d := now.Sub(b.last); d > 0 {
			b.tokens = min(b.rate, b.tokens+d.Seconds()*b.rate)
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
