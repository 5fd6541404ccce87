package service

// Subscription counts, throttled per channel.

import (
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
)

// countState throttles one channel's subscription count.
type countState struct {
	last    time.Time // when the count last went out
	pending bool      // it changed since
}

// countChanged publishes a channel's count at once if none went out within
// the interval, and otherwise marks it for the next tick after it.
func (t *term) countChanged(k state.Key, now time.Time) {
	if !t.svc.wantsCounts(k.App) && !t.svc.wantsCountHooks(k.App) {
		return
	}
	c := t.counts[k]
	if c == nil {
		c = &countState{}
		t.counts[k] = c
	}
	if now.Sub(c.last) >= t.svc.opt.CountInterval {
		t.publishCount(k, c, now)
		return
	}
	c.pending = true
}

// publishCounts sends the counts whose interval has passed since they
// changed, and forgets channels quiet for an interval.
func (t *term) publishCounts(now time.Time) {
	for k, c := range t.counts {
		switch {
		case c.pending && now.Sub(c.last) >= t.svc.opt.CountInterval:
			t.publishCount(k, c, now)
		case !c.pending && now.Sub(c.last) >= t.svc.opt.CountInterval:
			delete(t.counts, k)
		}
	}
}

// publishCount sends a channel's count to the gateways and queues its
// subscription_count webhook.
func (t *term) publishCount(k state.Key, c *countState, now time.Time) {
	c.last, c.pending = now, false
	n := t.st.Count(k)
	if t.svc.wantsCounts(k.App) {
		if err := t.svc.nc.Publish(names.SubscriptionCountSubject(k.App, k.Channel), presence.CountData(n)); err != nil {
			t.svc.log.Warn("publishing a subscription count", "app_id", k.App, "channel", k.Channel, "err", err)
		}
	}
	if err := t.queueCountWebhook(k, n, now); err != nil {
		t.svc.log.Warn("queueing a subscription_count webhook", "app_id", k.App, "channel", k.Channel, "err", err)
	}
}
