// Package stats holds the load generator's accounting: a concurrent latency
// histogram and the per-subscriber ledger of events that finds losses,
// duplicates and reordering.
package stats

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the precision: 2^subBits buckets per power of two keep every
// recorded value within 1/128 (0.8%) of its bucket, whatever its size, so
// one fixed array covers nanoseconds to hours.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	numBuckets = (64-subBits)*subBuckets + subBuckets
)

// Histogram counts durations in log-linear buckets. Record is safe for
// concurrent use and does not allocate; the readers are meant for after the
// writers have stopped, though they are race-free at any time.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
	max    atomic.Uint64
	min    atomic.Uint64 // stored as ^v so that the zero value means "none"
}

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	return shift*subBuckets + int(v>>shift)
}

// bucketRange is the half-open interval [lo, lo+width) of bucket i.
func bucketRange(i int) (lo, width uint64) {
	if i < 2*subBuckets {
		return uint64(i), 1
	}
	shift := i/subBuckets - 1
	return uint64(i-shift*subBuckets) << shift, 1 << shift
}

// Record adds one duration; negative ones (clock steps) count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	StoreMax(&h.max, v)
	StoreMax(&h.min, ^v)
}

// StoreMax raises a to v if v is larger.
func StoreMax[T int64 | uint64, A interface {
	Load() T
	CompareAndSwap(old, new T) bool
}](a A, v T) {
	for {
		m := a.Load()
		if v <= m || a.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min is the smallest recorded value, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration {
	m := h.min.Load()
	if m == 0 {
		return 0
	}
	return time.Duration(^m)
}

// Mean is the average recorded value; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value of nearest rank ceil(q*n), as the middle of its
// bucket clamped to the exact min and max; q <= 0 is the min and q >= 1 the
// max. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return h.Min()
	case q >= 1:
		return h.Max()
	}
	rank := max(1, uint64(math.Ceil(q*float64(n))))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := bucketRange(i)
			v := time.Duration(lo + w/2)
			return max(h.Min(), min(v, h.Max()))
		}
	}
	return h.Max()
}

// Merge adds o's counts into h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	StoreMax(&h.max, o.max.Load())
	StoreMax(&h.min, o.min.Load())
}

// Summary is a histogram's usual figures.
type Summary struct {
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns count, min, mean, p50, p90, p99, p99.9 and max.
func (h *Histogram) Summary() Summary {
	return Summary{
		Count: h.Count(), Min: h.Min(), Mean: h.Mean(),
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
		Max: h.Max(),
	}
}
