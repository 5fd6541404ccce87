package replay

import (
	"context"
	"fmt"
)

// Reading history in pages. A resume may cover a channel's whole history
// (1,000 events of 10 KB by default); a gateway that read it at once for
// every resuming client would hold all of it until the slowest client had
// taken it. With Options.PageBytes a resume or rewind reads one page, the
// caller sends it, and History.Next reads the next one from where the last
// stopped. Each page is proven complete when it is read (see resume): a
// channel's stored events are an unbroken tail, so a page is complete when
// no event after the one before it has left the stream. A client too slow
// for the window gets WindowExceeded from the page that fell out of it.

// pager reads one history page after another.
type pager struct {
	e               *Engine
	stream, subject string
	last            uint64 // the last event read, or where the history starts
	upTo            uint64 // the stream's last sequence when the read began: later events arrive live
	left            int    // events still wanted; negative for no bound
	done            bool
}

// read reads the page after p.last and, when prove is set, checks that no
// event after p.last has left the stream. The events' LastSeq chain from
// p.last.
func (p *pager) read(ctx context.Context, prove bool) ([]Event, error) {
	n := maxBatch
	if p.left >= 0 {
		n = min(n, p.left)
	}
	evs, pending, err := p.e.getBatch(ctx, p.stream, p.subject, p.last+1, n, p.e.pageBytes, nil)
	if err != nil {
		return nil, err
	}
	if prove {
		if err := p.e.prove(ctx, p.stream, p.subject, p.last); err != nil {
			return nil, err
		}
	}
	prev := p.last
	for i := range evs {
		evs[i].LastSeq = prev
		prev = evs[i].Seq
	}
	p.last = prev
	if p.left >= 0 {
		p.left -= len(evs)
	}
	p.done = len(evs) == 0 || pending == 0 || p.last >= p.upTo || p.left == 0
	return evs, nil
}

// rest is the pager when pages remain, else nil.
func (p *pager) rest() *pager {
	if p.done {
		return nil
	}
	return p
}

// More reports whether events follow the ones read so far: Next reads them.
func (h *History) More() bool { return h.rest != nil }

// Next reads the next page of the history (Options.PageBytes), oldest first,
// with LastSeq set as in Events. It fails with WindowExceeded when events of
// the page have left the stream since the previous one was read; nothing of
// the page is returned then.
func (h *History) Next(ctx context.Context) ([]Event, error) {
	p := h.rest
	if p == nil {
		return nil, nil
	}
	release, err := p.e.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading history of %s: %w", p.subject, err)
	}
	defer release()
	evs, err := p.read(ctx, true)
	if err != nil {
		h.rest = nil
		return nil, fmt.Errorf("reading history of %s after %d: %w", p.subject, p.last, err)
	}
	h.rest = p.rest()
	return evs, nil
}

// readAll reads the remaining pages into Events when the engine reads
// history at once (no PageBytes). The caller holds an engine slot.
func (h *History) readAll(ctx context.Context) error {
	if h.rest == nil || h.rest.e.pageBytes > 0 {
		return nil
	}
	for h.rest != nil {
		p := h.rest
		evs, err := p.read(ctx, true)
		if err != nil {
			return err
		}
		h.Events = append(h.Events, evs...)
		h.rest = p.rest()
	}
	return nil
}
