package hub

import (
	"context"
	"sync"
	"time"

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
// not a Direct Get per channel and check. A read starts at least markGap
// after the previous one ended, so that a wave's checks share a read rather
// than each start the next one (a stream info request is some 50 µs of
// CPU for the two ends): at most one read of an app's mark each markGap,
// and a check waits at most markGap longer.
type marks struct {
	eng *replay.Engine
	gap time.Duration

	mu    sync.Mutex
	byApp map[string]*appMark
}

type appMark struct {
	started, finished uint64        // reads of the mark
	done              chan struct{} // closed when the next read ends
	ended             time.Time     // of the last read
	mark              replay.Mark
	err               error
}

// markGap is the least time between the end of a read of an app's mark
// and the start of the next.
const markGap = 20 * time.Millisecond

func newMarks(eng *replay.Engine) *marks {
	return &marks{eng: eng, gap: markGap, byApp: map[string]*appMark{}}
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
			done := make(chan struct{})
			m.done = done
			// Until the read starts, callers that come share it.
			if wait := ms.gap - time.Since(m.ended); m.finished > 0 && wait > 0 {
				ms.mu.Unlock()
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					ms.mu.Lock()
					m.done = nil
					close(done)
					ms.mu.Unlock()
					return replay.Mark{}, ctx.Err()
				}
				ms.mu.Lock()
			}
			m.started++
			n := m.started
			ms.mu.Unlock()
			mark, err := ms.eng.StreamMark(ctx, app)
			ms.mu.Lock()
			m.mark, m.err, m.finished, m.done, m.ended = mark, err, n, nil, time.Now()
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
	if _, ok := rp.from(c); !ok {
		return false
	}
	now, ok := rp.markAfter(c.app)
	return ok && rp.unchangedSince(c, now)
}

// from is the mark read before c's start, if one was.
func (rp *repairer) from(c *channel) (replay.Mark, bool) {
	c.seq.mu.Lock()
	defer c.seq.mu.Unlock()
	return c.seq.from, c.seq.fromOK
}

// markAfter reads the app's mark (marks.after) within the repair timeout.
func (rp *repairer) markAfter(app string) (replay.Mark, bool) {
	ctx, cancel := context.WithTimeout(rp.ctx, rp.opt.Timeout)
	defer cancel()
	now, err := rp.marks.after(ctx, app)
	return now, err == nil
}

// unchangedSince reports whether the mark now, read after c's start, is the
// one read before it.
func (rp *repairer) unchangedSince(c *channel, now replay.Mark) bool {
	from, ok := rp.from(c)
	return ok && now == from
}
