// Package metrics holds the gateway's Prometheus collectors (namespace
// herald_gateway).
package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "herald_gateway"

// Metrics are the gateway's collectors.
type Metrics struct {
	Connections        *prometheus.GaugeVec   // open connections, by app_id
	ConnectionsTotal   *prometheus.CounterVec // accepted connections, by app_id
	MessagesSent       prometheus.Counter     // frames written to clients
	SlowConsumerCloses prometheus.Counter     // clients closed for not reading (4100 or write timeout)
	ClientEvents       prometheus.Counter     // client events relayed
	Subscriptions      prometheus.Gauge       // channel subscriptions of open connections
	NATSSlowConsumer   prometheus.Counter     // NATS messages dropped because the gateway fell behind
	BytesSent          prometheus.Counter     // bytes written to clients' sockets
	BytesReceived      prometheus.Counter     // payload bytes of the messages clients sent
}

// New builds the collectors and registers them with reg, unless reg is nil.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connections", Help: "Open WebSocket connections.",
		}, []string{"app_id"}),
		ConnectionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_total", Help: "WebSocket connections accepted.",
		}, []string{"app_id"}),
		MessagesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "messages_sent_total", Help: "Frames written to clients.",
		}),
		SlowConsumerCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "slow_consumer_closes_total",
			Help: "Clients closed because their send queue overflowed or a write timed out.",
		}),
		ClientEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "client_events_total", Help: "Client events accepted and relayed.",
		}),
		Subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "subscriptions", Help: "Channel subscriptions of open connections.",
		}),
		BytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sent_bytes_total", Help: "Bytes written to clients' sockets (frames and their headers).",
		}),
		BytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "received_bytes_total", Help: "Payload bytes of the messages clients sent.",
		}),
		NATSSlowConsumer: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "nats_slow_consumer_total",
			Help: "NATS messages dropped because the gateway's dispatchers fell behind.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Connections, m.ConnectionsTotal, m.MessagesSent,
		m.SlowConsumerCloses, m.ClientEvents, m.Subscriptions, m.NATSSlowConsumer, m.BytesSent, m.BytesReceived} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway metrics: %w", err)
		}
	}
	return m, nil
}
