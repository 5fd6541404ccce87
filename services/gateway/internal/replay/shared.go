package replay

import (
	"context"
	"sync/atomic"

	"github.com/herald-ws/herald/shared/position"
)

// Shared reads. When a gateway is lost, its clients reconnect to the others
// at once and resume, most of them on the same channels from the same
// position: the last event each had before the loss. Reading the history once
// per client cost a stream info, a batch of Direct Gets and its proof each,
// and as many frames to encode. So the resumes of one channel from one
// position share one read, and each replayed event's frame is encoded once
// for all of them (SharedFrame).
//
// Sharing keeps the completeness argument of resume: a resume is complete
// because its history read begins after its live subscription is in place,
// so every event stored later reaches that subscription. A resume therefore
// joins only a read that has not begun. Reads of one channel and position run
// one at a time; the resumes that arrive while one runs gather for the next,
// which begins once the previous one has ended and an engine slot is free.
// The busier the gateway, the more resumes each read serves; a lone resume
// reads at once, as before.
//
// What is shared is the first page (all of it without Options.PageBytes):
// each resume reads the later pages of a long history on its own.

// readKey is what resumes that share a read have in common.
type readKey struct {
	stream, subject string
	epoch           position.Epoch
	seq             uint64
}

// lane orders the reads of one key.
type lane struct {
	busy bool    // a read of the key is under way, or its flight waits for a slot
	next *flight // the resumes gathering for the next read; nil when none
}

// flight is one read and the resumes it serves.
type flight struct {
	from    position.Position
	waiting int // members still waiting for the result; guarded by Engine.lanesMu
	done    chan struct{}
	h       History // set before done is closed; Events are shared: read only
	err     error
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

// leave takes a member that stopped waiting out of f.
func (e *Engine) leave(f *flight) {
	e.lanesMu.Lock()
	f.waiting--
	e.lanesMu.Unlock()
}

// fly runs f's read once a slot is free, then starts the read of whoever
// gathered meanwhile. Its reads are bounded by Options.Timeout each, not by
// any member's context: members that leave do not cancel the others' read.
func (e *Engine) fly(k readKey, l *lane, f *flight) {
	release, _ := e.acquire(context.Background())
	e.lanesMu.Lock()
	l.next = nil // resumes from now on wait for the read after this one
	members := f.waiting
	e.lanesMu.Unlock()
	if members > 0 {
		e.reads.Add(1)
		ctx := context.Background()
		h, err := e.resume(ctx, k.stream, k.subject, f.from)
		if err == nil {
			err = h.readAll(ctx)
		}
		if err == nil && members > 1 {
			for i := range h.Events {
				h.Events[i].shared = &sharedFrame{}
			}
		}
		f.h, f.err = h, err
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

// wait returns f's history for a member resuming from p, or ctx's error
// when ctx ends first.
func (e *Engine) wait(ctx context.Context, f *flight, p position.Position) (History, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		e.leave(f)
		return History{}, ctx.Err()
	}
	if f.err != nil {
		return History{}, f.err
	}
	h := History{Start: p, Events: f.h.Events}
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
