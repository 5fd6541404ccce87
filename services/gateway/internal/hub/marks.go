package hub

import (
	"context"
	"sync"

	"github.com/herald-ws/herald/services/gateway/internal/replay"
)

// Stream marks spare the tail reads of a wave of new channels.
//
// A newly followed channel has its tail read right after its live
// subscription is made, and again a tick later, for the events stored while
// the subscription was not yet in place. When the app's events stream has
// stored nothing since before the channel's start was read, there is
// nothing such a read could find. So the channel keeps the stream's mark
// (epoch and last sequence) as last read before its start, and a check
// compares it with a mark read after the check began; only a stream that
// moved is read channel by channel. Reads of the mark are shared: a wave of
// thousands of subscribes with no traffic costs a few stream info requests,
// not a Direct Get per channel and check.
type marks struct {
	eng *replay.Engine

	mu    sync.Mutex
	byApp map[string]*appMark
}

type appMark struct {
	started, finished uint64 // reads of the mark
	done              chan struct{}
	mark              replay.Mark
	err               error
}

func newMarks(eng *replay.Engine) *marks {
	return &marks{eng: eng, byApp: map[string]*appMark{}}
}

// known returns the mark as last read, if a read succeeded.
func (ms *marks) known(app string) (replay.Mark, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.byApp[app]
	if m == nil || m.finished == 0 || m.err != nil {
		return replay.Mark{}, false
	}
	return m.mark, true
}

// after returns the mark as read by a read that began after the call: the
// one in progress is not enough, the next one is shared by every caller
// waiting for it.
func (ms *marks) after(ctx context.Context, app string) (replay.Mark, error) {
	ms.mu.Lock()
	m := ms.byApp[app]
	if m == nil {
		m = &appMark{}
		ms.byApp[app] = m
	}
	want := m.started + 1
	for m.finished < want {
		if m.done == nil {
			m.started++
			n, done := m.started, make(chan struct{})
			m.done = done
			ms.mu.Unlock()
			mark, err := ms.eng.StreamMark(ctx, app)
			ms.mu.Lock()
			m.mark, m.err, m.finished, m.done = mark, err, n, nil
			close(done)
			continue
		}
		done := m.done
		ms.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return replay.Mark{}, ctx.Err()
		}
		ms.mu.Lock()
	}
	mark, err := m.mark, m.err
	ms.mu.Unlock()
	return mark, err
}

// unchanged reports whether the app's stream stored nothing since c's
// start was read.
func (rp *repairer) unchanged(c *channel) bool {
	c.seq.mu.Lock()
	from, ok := c.seq.from, c.seq.fromOK
	c.seq.mu.Unlock()
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(rp.ctx, rp.opt.Timeout)
	defer cancel()
	now, err := rp.marks.after(ctx, c.app)
	return err == nil && now == from
}
