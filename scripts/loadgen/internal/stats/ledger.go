package stats

import "math/bits"

// Bitset is a growable set of small non-negative integers (event sequence
// numbers). Not safe for concurrent use.
type Bitset struct{ w []uint64 }

// Add inserts i and reports whether it was already there.
func (b *Bitset) Add(i uint64) (had bool) {
	k := int(i / 64)
	if k >= len(b.w) {
		b.w = append(b.w, make([]uint64, k+1-len(b.w))...)
	}
	m := uint64(1) << (i % 64)
	had = b.w[k]&m != 0
	b.w[k] |= m
	return had
}

// Has reports whether i is in the set.
func (b *Bitset) Has(i uint64) bool {
	k := int(i / 64)
	return k < len(b.w) && b.w[k]&(uint64(1)<<(i%64)) != 0
}

// Len is the number of members.
func (b *Bitset) Len() uint64 {
	var n int
	for _, w := range b.w {
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// AndNotLen is |b \ o|.
func (b *Bitset) AndNotLen(o *Bitset) uint64 {
	var n int
	for k, w := range b.w {
		if k < len(o.w) {
			w &^= o.w[k]
		}
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// Channel is the trigger side's ledger of one channel: which sequence
// numbers the API accepted, and when each answer arrived. One sender writes
// each entry; Tally reads them after every sender has stopped.
type Channel struct {
	Accepted Bitset
	AckedAt  []int64 // unix nanos of the 200, by sequence number; 0 if none
}

// Ack records that the API accepted seq at time ns.
func (c *Channel) Ack(seq uint64, ns int64) {
	c.Accepted.Add(seq)
	if seq < uint64(len(c.AckedAt)) {
		c.AckedAt[seq] = ns
	}
}

// maxLate bounds the reordered receipts a subscriber keeps for checking (16
// bytes each), so a server that reorders everything cannot exhaust memory.
const maxLate = 2048

// lateReceipt is an event that arrived after one sent later than itself.
type lateReceipt struct {
	seq   uint64
	after int64 // send time of the latest-sent event received before it
}

// Receiver is what one subscriber saw of its channel's events. One
// goroutine (the connection's reader) writes it; Tally reads it after that
// goroutine has stopped.
//
// Order: events sent concurrently may be stored in either order, so an
// event is out of order only when it arrives after an event whose request
// started after this event's request had been answered: the server had
// accepted it first, and delivered it later. Receipts that merely arrive
// after a later-sent event are "reordered" and kept to check that against
// the trigger's answer times.
type Receiver struct {
	seen       Bitset
	received   uint64 // every event frame, duplicates included
	duplicates uint64
	foreign    uint64 // events of a channel this subscriber is not on
	reordered  uint64
	unchecked  uint64 // reordered receipts beyond maxLate
	maxSent    int64
	late       []lateReceipt
}

// Record accounts one received event of sequence seq sent at sentAt (unix
// nanos). It reports whether this is the first receipt of seq.
func (r *Receiver) Record(seq uint64, sentAt int64) (first bool) {
	r.received++
	if r.seen.Add(seq) {
		r.duplicates++
		return false
	}
	if sentAt < r.maxSent {
		r.reordered++
		if len(r.late) < maxLate {
			r.late = append(r.late, lateReceipt{seq, r.maxSent})
		} else {
			r.unchecked++
		}
	}
	r.maxSent = max(r.maxSent, sentAt)
	return true
}

// Foreign accounts an event that arrived for another channel.
func (r *Receiver) Foreign() { r.foreign++ }

// Received is the number of event frames recorded, duplicates included.
func (r *Receiver) Received() uint64 { return r.received }

// Tally is the accounting of a whole run.
type Tally struct {
	Expected   uint64 `json:"expected"`   // accepted events x their channel's subscribers
	Delivered  uint64 `json:"delivered"`  // distinct accepted events received
	Lost       uint64 `json:"lost"`       // Expected - Delivered
	Duplicates uint64 `json:"duplicates"` // receipts beyond the first
	OutOfOrder uint64 `json:"out_of_order"`
	// Reordered counts arrivals after a later-sent event, overlapping
	// requests included; OutOfOrder is the part the server is to blame for.
	Reordered uint64 `json:"reordered"`
	// Unchecked reordered receipts were past the per-subscriber bound.
	Unchecked  uint64 `json:"reordered_unchecked"`
	Unexpected uint64 `json:"unexpected"` // received although the trigger call failed
	Foreign    uint64 `json:"foreign"`    // received on a channel not subscribed to
}

// Add accounts one subscriber against its channel's ledger.
func (t *Tally) Add(r *Receiver, ch *Channel) {
	want := ch.Accepted.Len()
	got := r.seen.Len()
	extra := r.seen.AndNotLen(&ch.Accepted)
	t.Expected += want
	t.Delivered += got - extra
	t.Lost += want - (got - extra)
	t.Duplicates += r.duplicates
	t.Reordered += r.reordered
	t.Unchecked += r.unchecked
	t.Unexpected += extra
	t.Foreign += r.foreign
	for _, l := range r.late {
		if l.seq < uint64(len(ch.AckedAt)) {
			if ack := ch.AckedAt[l.seq]; ack != 0 && ack < l.after {
				t.OutOfOrder++
			}
		}
	}
}
