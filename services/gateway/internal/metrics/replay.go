package metrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Replay are the collectors of Herald's replay extension and of gap repair
// on the live path.
type Replay struct {
	// Resumes counts resumes and rewinds by outcome: "resumed", or the
	// reason of herald:resume_failed.
	Resumes *prometheus.CounterVec
	// Replayed counts events sent from history by resumes and rewinds.
	Replayed prometheus.Counter
	// ResumeReads counts the history reads of resumes: the resumes of one
	// channel that wait together share one.
	ResumeReads prometheus.Counter
	// LiveRecovered counts stored events delivered from the stream rather
	// than live: missed live, or read by a tail check before their live
	// copy arrived.
	LiveRecovered prometheus.Counter
	// LiveUnrecoverable counts holes in live delivery that the stream could
	// no longer fill: events lost.
	LiveUnrecoverable prometheus.Counter
	// CacheMisses counts subscriptions to cache channels that had no event
	// to send.
	CacheMisses prometheus.Counter
}

// NewReplay builds the replay collectors and registers them with reg,
// unless reg is nil.
func NewReplay(reg prometheus.Registerer) (*Replay, error) {
	m := &Replay{
		Resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "resumes_total",
			Help: "Resumes and rewinds, by outcome (resumed, or the herald:resume_failed reason).",
		}, []string{"outcome"}),
		Replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "replayed_events_total", Help: "Events sent from history by resumes and rewinds.",
		}),
		ResumeReads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "resume_reads_total",
			Help: "History reads of resumes (resumes of one channel waiting together share one).",
		}),
		LiveRecovered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "live_recovered_events_total",
			Help: "Stored events delivered from the stream rather than live (missed live, or read by a tail check first).",
		}),
		LiveUnrecoverable: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "live_unrecoverable_gaps_total",
			Help: "Holes in live delivery that the stream could no longer fill.",
		}),
		CacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_misses_total", Help: "Cache channel subscriptions answered with pusher:cache_miss.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Resumes, m.Replayed, m.ResumeReads, m.LiveRecovered, m.LiveUnrecoverable, m.CacheMisses} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering replay metrics: %w", err)
		}
	}
	return m, nil
}
