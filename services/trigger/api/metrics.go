package api

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	// byRoute caches requests' counters by route and code: resolving the
	// labels costs a hash and a lookup per request.
	byRoute   sync.Map               // routeCode → prometheus.Counter
	events    *prometheus.CounterVec // by app_id: apps are configured, so their number is bounded
	byApp     sync.Map               // app id → events' prometheus.Counter, as byRoute
	publishes prometheus.Histogram
	retries   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald_trigger",
			Name:      "requests_total",
			Help:      "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "herald_trigger",
			Name:      "events_published_total",
			Help:      "Channel events stored (one per channel of an event), by app.",
		}, []string{"app_id"}),
		publishes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "herald_trigger",
			Name:      "publish_duration_seconds",
			Help:      "Time from publishing a request's events to their last acknowledgement, for requests that succeeded.",
			Buckets:   []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "herald_trigger",
			Name:      "publish_retries_total",
			Help:      "Publishes tried again after NATS was unreachable or a stream had no leader.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	if m.events, err = register(reg, m.events); err != nil {
		return nil, err
	}
	if m.publishes, err = register(reg, m.publishes); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds c to reg, or returns the collector already registered
// there under the same name (a second API on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

type routeCode struct {
	route string
	code  int
}

func (m *metrics) request(route string, code int) {
	k := routeCode{route, code}
	c, ok := m.byRoute.Load(k)
	if !ok {
		c, _ = m.byRoute.LoadOrStore(k, m.requests.WithLabelValues(route, strconv.Itoa(code)))
	}
	c.(prometheus.Counter).Inc()
}

func (m *metrics) published(appID string, n int, d time.Duration) {
	c, ok := m.byApp.Load(appID)
	if !ok {
		c, _ = m.byApp.LoadOrStore(appID, m.events.WithLabelValues(appID))
	}
	c.(prometheus.Counter).Add(float64(n))
	m.publishes.Observe(d.Seconds())
}
