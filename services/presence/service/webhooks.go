package service

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/services/presence/internal/webhook"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/herald-ws/herald/shared/webhooks"
	"github.com/nats-io/nats.go"
)

// hookGroup is the webhook events of one step for one app.
type hookGroup struct {
	app    *appconf.App
	id     string
	events []webhooks.Event
}

// queueWebhooks queues the webhooks of one step: per app, channel_occupied
// first, then the member events in order, then channel_vacated, in batches
// whose ids derive from id. Grace expiries (empty id) are grouped per
// channel and named after their member events' ids, which derive from the
// persisted deadlines.
func (t *term) queueWebhooks(fx *state.Effects, id string) error {
	if t.svc.opt.Apps == nil || (len(fx.Events) == 0 && len(fx.Occupancy) == 0) {
		return nil
	}
	var groups []*hookGroup
	group := func(k state.Key, name string) *hookGroup {
		app, ok := t.svc.webhookApp(k.App, name)
		if !ok {
			return nil
		}
		gid := id
		if gid == "" {
			gid = "grace-" + webhooks.Digest(k.App, k.Channel)
		}
		for _, g := range groups {
			if g.app.ID == k.App && g.id == gid {
				return g
			}
		}
		g := &hookGroup{app: app, id: gid}
		groups = append(groups, g)
		return g
	}
	add := func(k state.Key, e webhooks.Event) {
		if g := group(k, e.Name); g != nil {
			g.events = append(g.events, e)
		}
	}
	occupancy := func(occupied bool) {
		for _, o := range fx.Occupancy {
			if o.Occupied != occupied {
				continue
			}
			name := webhooks.ChannelVacated
			if occupied {
				name = webhooks.ChannelOccupied
			}
			add(o.Key, webhooks.Event{Name: name, Channel: o.Channel})
		}
	}
	occupancy(true)
	var graceIDs map[*hookGroup][]string
	for i := range fx.Events {
		ev := &fx.Events[i]
		name := webhooks.MemberRemoved
		if ev.Event == protocol.EventMemberAdded {
			name = webhooks.MemberAdded
		}
		k := state.Key{App: ev.App, Channel: ev.Channel}
		g := group(k, name)
		if g == nil {
			continue
		}
		g.events = append(g.events, webhooks.Event{Name: name, Channel: ev.Channel, UserID: ev.UserID})
		if id == "" {
			if graceIDs == nil {
				graceIDs = map[*hookGroup][]string{}
			}
			graceIDs[g] = append(graceIDs[g], ev.MsgID)
		}
	}
	occupancy(false)

	now := time.Now()
	for _, g := range groups {
		if len(g.events) == 0 {
			continue
		}
		gid := g.id
		if id == "" {
			ids := slices.SortedFunc(slices.Values(graceIDs[g]), cmp.Compare)
			if len(ids) == 0 {
				// No member event to name it after: nothing repeats it.
				ids = []string{strconv.FormatInt(now.UnixNano(), 36)}
			}
			gid += "-" + webhooks.Digest(ids...)
		}
		msgs, err := webhooks.Messages(g.app.ID, g.app.Webhooks, gid, now, g.events)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := t.queueWebhookMsg(m); err != nil {
				return err
			}
			if len(t.webhookAcks) >= maxUnsettled {
				if err := t.settle(t.ctx); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// queueCountWebhook queues subscription_count for a channel whose throttled
// count went out, if the app's endpoints take it. Counts are not replayed
// after a restart, so the id need only be unique.
func (t *term) queueCountWebhook(k state.Key, n int, now time.Time) error {
	app, ok := t.svc.webhookApp(k.App, webhooks.SubscriptionCount)
	if !ok {
		return nil
	}
	id := "count-" + webhooks.Digest(k.App, k.Channel) + "-" + strconv.FormatInt(now.UnixNano(), 36)
	msgs, err := webhooks.Messages(app.ID, app.Webhooks, id, now, []webhooks.Event{{Name: webhooks.SubscriptionCount, Channel: k.Channel, SubscriptionCount: n}})
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := t.queueWebhookMsg(m); err != nil {
			return err
		}
	}
	return nil
}

// queueWebhookMsg publishes one webhook batch to its queue without waiting
// for the ack, which settle collects.
func (t *term) queueWebhookMsg(m *nats.Msg) error {
	f, err := t.svc.js.PublishMsgAsync(m)
	if err != nil {
		return fmt.Errorf("queueing a webhook: %w", err)
	}
	t.webhookAcks = append(t.webhookAcks, f)
	t.svc.metrics.webhooks.WithLabelValues("queued").Inc()
	return nil
}

// deliverWebhooks starts delivering the queued webhooks for this term, if
// any app has an endpoint; the returned function stops it.
func (t *term) deliverWebhooks() func() {
	if !t.svc.hasWebhooks() {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := webhook.Deliver(t.ctx, webhook.Options{
			Stream:   t.in.hooks,
			Apps:     t.svc.opt.Apps,
			Logger:   t.svc.log,
			Timeout:  t.svc.opt.WebhookTimeout,
			RetryFor: t.svc.opt.WebhookRetryFor,
			Backoff:  t.svc.opt.WebhookBackoff,
			Result:   func(r string) { t.svc.metrics.webhooks.WithLabelValues(r).Inc() },
		})
		if err != nil {
			t.svc.log.Warn("delivering webhooks", "err", err)
		}
	}()
	return func() { <-done }
}
