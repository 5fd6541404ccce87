package gateway

import (
	"encoding/json"
	"time"

	"github.com/herald-ws/herald/shared/status"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// startStats publishes this gateway's figures on status.Subject every
// status.Interval until stopStats, for the status page. One small message
// per interval: nothing is computed per frame for it.
func (g *Gateway) startStats() {
	g.statsStop = make(chan struct{})
	g.statsDone = make(chan struct{})
	go func() {
		defer close(g.statsDone)
		t := time.NewTicker(status.Interval)
		defer t.Stop()
		g.publishStats()
		for {
			select {
			case <-t.C:
				g.publishStats()
			case <-g.statsStop:
				return
			}
		}
	}()
}

// stopStats ends the publishing, after one last message (draining).
func (g *Gateway) stopStats() {
	if g.statsStop == nil {
		return
	}
	select {
	case <-g.statsStop:
	default:
		close(g.statsStop)
	}
	<-g.statsDone
	g.publishStats()
}

func (g *Gateway) publishStats() {
	b, err := json.Marshal(g.Stats())
	if err != nil {
		return
	}
	if err := g.opt.NC.Publish(status.Subject, b); err != nil {
		g.log.Debug("publishing gateway figures", "err", err)
	}
}

// Stats returns this gateway's figures now.
func (g *Gateway) Stats() status.Gateway {
	s := status.Gateway{
		ID:                 g.id,
		Started:            g.started,
		Time:               time.Now(),
		Channels:           g.hub.Channels(),
		Subscriptions:      int64(sum(g.metrics.Subscriptions, nil)),
		Apps:               make(map[string]int64, len(g.perApp)),
		MessagesSent:       uint64(sum(g.metrics.MessagesSent, nil)),
		BytesSent:          uint64(sum(g.metrics.BytesSent, nil)),
		BytesReceived:      uint64(sum(g.metrics.BytesReceived, nil)),
		ClientEvents:       uint64(sum(g.metrics.ClientEvents, nil)),
		SlowConsumerCloses: uint64(sum(g.metrics.SlowConsumerCloses, nil)),
		NATS:               g.opt.NC.Status().String(),
		Draining:           g.draining.Load(),
	}
	for id, n := range g.perApp {
		if v := n.Load(); v > 0 {
			s.Apps[id] = v
			s.Connections += v
		}
	}
	if rm := g.replay.Metrics; rm != nil {
		resumed := func(m *dto.Metric) bool { return label(m, "outcome") == "resumed" }
		s.Resumes = uint64(sum(rm.Resumes, resumed))
		s.ResumeFailures = uint64(sum(rm.Resumes, func(m *dto.Metric) bool { return !resumed(m) }))
		s.ReplayedEvents = uint64(sum(rm.Replayed, nil))
	}
	return s
}

// sum adds the values of a collector's counters and gauges that keep
// holds for (all when nil).
func sum(c prometheus.Collector, keep func(*dto.Metric) bool) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var total float64
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil || keep != nil && !keep(&d) {
			continue
		}
		total += d.GetCounter().GetValue() + d.GetGauge().GetValue()
	}
	return total
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
