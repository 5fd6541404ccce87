package service

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	active        prometheus.Gauge
	terms         prometheus.Counter
	ops           *prometheus.CounterVec
	memberEvents  prometheus.Counter
	requests      *prometheus.CounterVec
	flushSeconds  prometheus.Histogram
	channels      prometheus.Gauge
	subscriptions prometheus.Gauge
	members       prometheus.Gauge
	gatewaysGone  prometheus.Counter
	webhooks      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_presence_active",
			Help: "1 while this instance holds the lock and applies operations."}),
		terms: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_presence_terms_total",
			Help: "Times this instance became active."}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_presence_ops_total",
			Help: "Operations consumed, by result: applied, replayed (already applied), ignored (late or refused), malformed."},
			[]string{"result"}),
		memberEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_presence_member_events_total",
			Help: "member_added and member_removed events published."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_presence_member_requests_total",
			Help: "Member list requests answered, by status."}, []string{"status"}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_presence_flush_seconds",
			Help: "Time to persist a batch of state changes.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		channels: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_presence_channels",
			Help: "Occupied channels."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_presence_subscriptions",
			Help: "Subscriptions on all gateways."}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "herald_presence_members",
			Help: "Members of presence channels, a user counted once per channel."}),
		gatewaysGone: prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_presence_gateways_gone_total",
			Help: "Gateways whose heartbeat ended."}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_presence_webhooks_total",
			Help: "Webhook batches: queued; and POSTs by outcome: ok, failed (retried), dropped (retried too long)."},
			[]string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.active, m.terms, m.ops, m.memberEvents, m.requests, m.flushSeconds,
		m.channels, m.subscriptions, m.members, m.gatewaysGone, m.webhooks} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}
