package replay

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/herald-ws/herald/shared/position"
)

// Shared reads. When a gateway is lost, its clients reconnect to the others
// at once and resume, most of them on the same channels from the same or
// nearby positions: the last event each had before the loss. Reading the
// history once per client cost a stream info, a batch of Direct Gets and its
// proof each, and as many frames to encode. So the resumes of one channel
// that wait at the same time share one read, from the oldest of their
// positions, and each replayed event's frame is encoded once for all of them
// (SharedFrame).
//
// Sharing keeps the completeness argument of resume. A resume is complete
// because its history read begins after its live subscription is in place,
// so every event stored later reaches that subscription: a resume therefore
// joins only a read that has not begun. Reads of one channel run one at a
// time; the resumes that arrive while one runs gather for the next, which
// begins once the previous one has ended and an engine slot is free. The
// busier the gateway, the more resumes each read serves; a lone resume reads
// at once, as before. A read from the oldest position p0 that proves no event
// after p0 has left the stream proves it for every later position too; each
// resume takes the events after its own position, and one whose position is
// past the stream's last sequence is refused as before. When the read fails
// with WindowExceeded for p0, the resumes from later positions read again
// without it, since their own history may still be whole.
//
// What is shared is the first page (all of it without Options.PageBytes):
// each resume reads the later pages of a long history on its own.

// readKey is what resumes that share a read have in common.
type readKey struct {
	stream, subject string
	epoch           position.Epoch
}

// lane orders the reads of one key.
type lane struct {
	busy bool    // a read of the key is under way, or its flight waits for a slot
	next *flight // the resumes gathering for the next read; nil when none
}

// flight is one read and the resumes it serves.
type flight struct {
	from    position.Position // the oldest position of its members while they gather
	waiting int               // members still waiting for the result
	done    chan struct{}
	// Set before done is closed. Events are shared: read only.
	h    History
	upTo uint64 // the stream's last sequence when the read began
	err  error
}

// join returns the flight that a resume of k from p waits on: the one
// gathering for k's next read, or a new one.
func (e *Engine) join(k readKey, p position.Position) *flight {
	e.lanesMu.Lock()
	defer e.lanesMu.Unlock()
	l := e.lanes[k]
	if l == nil {
		l = &lane{}
		e.lanes[k] = l
	}
	if f := l.next; f != nil {
		f.waiting++
		if p.Seq < f.from.Seq {
			f.from = p
		}
		return f
	}
	f := &flight{from: p, waiting: 1, done: make(chan struct{})}
	l.next = f
	if !l.busy {
		l.busy = true
		go e.fly(k, l, f)
	}
	return f
}

// fly runs f's read once a slot is free, then starts the read of whoever
// gathered meanwhile. Its reads are bounded by Options.Timeout each, not by
// any member's context: members that leave do not cancel the others' read.
func (e *Engine) fly(k readKey, l *lane, f *flight) {
	release, _ := e.acquire(context.Background())
	e.lanesMu.Lock()
	l.next = nil // resumes from now on wait for the read after this one
	members, from := f.waiting, f.from
	e.lanesMu.Unlock()
	if members > 0 {
		e.reads.Add(1)
		if e.readsC != nil {
			e.readsC.Inc()
		}
		ctx := context.Background()
		h, upTo, err := e.resume(ctx, k.stream, k.subject, from)
		if err == nil {
			err = h.readAll(ctx)
		}
		if err == nil && members > 1 {
			for i := range h.Events {
				h.Events[i].shared = &sharedFrame{}
			}
		}
		f.h, f.upTo, f.err = h, upTo, err
		if e.afterRead != nil {
			e.afterRead()
		}
	} else {
		f.err = context.Canceled // no one is left to tell
	}
	release()
	close(f.done)

	e.lanesMu.Lock()
	defer e.lanesMu.Unlock()
	if l.next != nil {
		go e.fly(k, l, l.next)
		return
	}
	l.busy = false
	delete(e.lanes, k)
}

// errRetry: the shared read failed for an older position than the member's.
var errRetry = errors.New("replay: read again")

// wait returns f's history for a member resuming from p, or ctx's error
// when ctx ends first.
func (e *Engine) wait(ctx context.Context, f *flight, p position.Position) (History, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		e.lanesMu.Lock()
		f.waiting--
		e.lanesMu.Unlock()
		return History{}, ctx.Err()
	}
	if f.err != nil {
		if errors.Is(f.err, WindowExceeded) && p.Seq > f.from.Seq {
			return History{}, errRetry
		}
		return History{}, f.err
	}
	if err := pastLast(p.Seq, f.upTo); err != nil {
		return History{}, err
	}
	// The events after p: the first one's predecessor is at or before p.
	i, _ := slices.BinarySearchFunc(f.h.Events, p.Seq+1, func(ev Event, seq uint64) int { return cmp.Compare(ev.Seq, seq) })
	h := History{Start: p, Events: f.h.Events[i:]}
	if f.h.rest != nil {
		// Each member reads the later pages on its own.
		rest := *f.h.rest
		h.rest = &rest
	}
	return h, nil
}

// sharedFrame is the frame of an event that several resumes replay.
type sharedFrame struct {
	frame atomic.Pointer[encodedFrame]
}

type encodedFrame struct {
	epoch position.Epoch
	b     []byte
}

// SharedFrame returns the event's frame with its position in epoch, as
// encode makes it, encoding it once for every resume that shares the read
// the event came from. Other events are encoded each time. Safe for
// concurrent use.
func (e *Event) SharedFrame(epoch position.Epoch, encode func(*Event) []byte) []byte {
	if e.shared == nil {
		return encode(e)
	}
	if f := e.shared.frame.Load(); f != nil && f.epoch == epoch {
		return f.b
	}
	b := encode(e)
	e.shared.frame.Store(&encodedFrame{epoch, b})
	return b
}
