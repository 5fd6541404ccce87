package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-ws/herald/scripts/loadgen/internal/stats"
	"github.com/herald-ws/herald/scripts/loadgen/internal/trigger"
)

// report is the outcome of a load or idle run; its JSON form is the -json
// output.
type report struct {
	Mode            string          `json:"mode"`
	Config          configSummary   `json:"config"`
	Connections     connReport      `json:"connections"`
	Events          *trigger.Result `json:"events,omitempty"`
	Messages        *stats.Tally    `json:"messages,omitempty"`
	DeliveredPerSec float64         `json:"delivered_per_sec,omitempty"`
	Latency         *stats.Summary  `json:"latency,omitempty"`
	Pings           pingReport      `json:"pings"`
	// HoldCPU is the server's CPU in each second of an idle hold, in
	// percent of one core.
	HoldCPU []float64     `json:"hold_cpu_pct,omitempty"`
	Server  *serverReport `json:"server,omitempty"`
	Loadgen loadgenReport `json:"loadgen"`
	Machine machineReport `json:"machine"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

type configSummary struct {
	Gateways []string      `json:"gateways"`
	API      string        `json:"api"`
	Conns    int           `json:"conns"`
	Channels int           `json:"channels"`
	Private  bool          `json:"private"`
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration_ns"`
	Size     int           `json:"size"`
	Batch    int           `json:"batch"`
	Senders  int           `json:"senders"`
}

func (c *config) summary() configSummary {
	return configSummary{Gateways: c.WS, API: c.API, Conns: c.Conns, Channels: c.Chans, Private: c.Private,
		Rate: c.Rate, Duration: c.Dur, Size: c.Size, Batch: c.Batch, Senders: c.Senders}
}

type connReport struct {
	Attempted int            `json:"attempted"`
	Opened    int            `json:"opened"`
	Failed    int            `json:"failed"`
	FailedBy  map[string]int `json:"failed_by,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	// Ramp is the time to open all of them.
	Ramp      time.Duration `json:"ramp_ns"`
	Connect   stats.Summary `json:"connect"`   // dial to connection_established
	Subscribe stats.Summary `json:"subscribe"` // subscribe to subscription_succeeded
	// Dropped ended before the load generator closed them.
	Dropped   int            `json:"dropped"`
	DroppedBy map[string]int `json:"dropped_by,omitempty"`
}

type pingReport struct {
	FromServer uint64 `json:"pings_from_server"`
	ToServer   uint64 `json:"pings_to_server"`
	Pongs      uint64 `json:"pongs"`
	Errors     uint64 `json:"pusher_errors"`
	Other      uint64 `json:"other_frames"`
}

type serverReport struct {
	PIDs       []int         `json:"pids"`
	CPUConnect time.Duration `json:"cpu_connect_ns"` // while connecting and settling
	// CPUSubscribe is the part until the last connection subscribed,
	// CPUSettle the part in the -settle pause after it (work a wave of
	// subscriptions leaves behind); CPUPerConn is CPUConnect per connection.
	CPUSubscribe time.Duration `json:"cpu_subscribe_ns"`
	CPUSettle    time.Duration `json:"cpu_settle_ns"`
	CPUPerConn   time.Duration `json:"cpu_per_conn_ns"`
	CPUPhase     time.Duration `json:"cpu_phase_ns"` // while triggering and draining, or holding
	PhaseSeconds float64       `json:"phase_seconds"`
	CPUPhasePct  float64       `json:"cpu_phase_pct"` // of one core
	RSSBefore    uint64        `json:"rss_before"`
	// RSSAfterConnect is read after every connection subscribed and the
	// settle pause.
	RSSAfterConnect uint64   `json:"rss_after_connect"`
	RSSAfter        uint64   `json:"rss_after"`
	RSSPeak         uint64   `json:"rss_peak"` // sampled every 100 ms
	RSSPeakEach     []uint64 `json:"rss_peak_each"`
	// RSSPerConn is (RSSAfterConnect - RSSBefore) / connections opened.
	RSSPerConn float64 `json:"rss_per_conn"`
}

type loadgenReport struct {
	CPUTotal time.Duration `json:"cpu_total_ns"`
	CPUPhase time.Duration `json:"cpu_phase_ns"`
}

// machineReport shows whether the run had the machine to itself: CPU time
// spent outside the measured server and loadgen (OthersPhase) competed with
// both. It holds other processes, and kernel network work that ran in
// ksoftirqd or on an idle CPU; interrupt work that ran while a process was
// on the CPU is in that process's time (tick-based accounting).
type machineReport struct {
	CPUs         int           `json:"cpus"`
	PhaseSeconds float64       `json:"phase_seconds"`
	BusyPhase    time.Duration `json:"busy_phase_ns"`
	IRQPhase     time.Duration `json:"irq_phase_ns"` // part of BusyPhase, and partly of the processes'
	OthersPhase  time.Duration `json:"others_phase_ns"`
}

func (r *report) write(asJSON bool, stdout, stderr io.Writer) error {
	return writeReport(r.text(), r, asJSON, stdout, stderr)
}

// writeReport prints a report's text, on stdout, or on stderr with the
// report as a JSON object on stdout.
func writeReport(text string, r any, asJSON bool, stdout, stderr io.Writer) error {
	w := stdout
	if asJSON {
		w = stderr
	}
	if _, err := io.WriteString(w, text); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if !asJSON {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	_, err = stdout.Write(append(b, '\n'))
	return err
}

func (r *report) text() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	c := r.Config
	if r.Mode == "idle" {
		p("idle: %d connections on %d gateway(s), %d channel(s), held %s", c.Conns, len(c.Gateways), c.Channels, c.Duration)
	} else {
		p("load: %d connections on %d gateway(s), %d channel(s), %g events/s for %s, %d B data, batch %d, %d sender(s)",
			c.Conns, len(c.Gateways), c.Channels, c.Rate, c.Duration, c.Size, c.Batch, c.Senders)
	}
	cn := r.Connections
	p("connections  opened %d of %d, failed %d%s, dropped %d%s, in %s, %.0f/s (connect %s; subscribe %s)",
		cn.Opened, cn.Attempted, cn.Failed, counts(cn.FailedBy), cn.Dropped, counts(cn.DroppedBy),
		ms(cn.Ramp), float64(cn.Opened)/max(cn.Ramp.Seconds(), 1e-9), dist(cn.Connect), dist(cn.Subscribe))
	if cn.LastError != "" {
		p("             last failure: %s", cn.LastError)
	}
	if e := r.Events; e != nil {
		p("events       planned %d, accepted %d, failed %d (HTTP %d, transport %d requests), unsent %d; %d requests (%s), max lag %s",
			e.Planned, e.Accepted, e.Failed, e.HTTPError, e.Transport, e.Unsent, e.Requests, dist(e.Latency), ms(e.MaxLag))
		if e.LastError != "" {
			p("             last failure: %s", e.LastError)
		}
	}
	if m := r.Messages; m != nil {
		drain := ""
		if r.Events != nil {
			drain = " (drain: " + r.Events.Drain + ")"
		}
		p("messages     expected %d, delivered %d, missing %d%s, duplicates %d, out of order %d (reordered among overlapping requests %d, unchecked %d), unexpected %d, foreign %d",
			m.Expected, m.Delivered, m.Lost, drain, m.Duplicates, m.OutOfOrder, m.Reordered-m.OutOfOrder-m.Unchecked, m.Unchecked, m.Unexpected, m.Foreign)
		p("throughput   %.0f messages/s delivered", r.DeliveredPerSec)
	}
	if l := r.Latency; l != nil {
		p("latency      p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%d)",
			ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean), l.Count)
	}
	pg := r.Pings
	p("frames       pings from server %d, pings sent %d, pongs %d, pusher:error %d, other %d",
		pg.FromServer, pg.ToServer, pg.Pongs, pg.Errors, pg.Other)
	if s := r.Server; s != nil {
		phase := "events"
		if r.Mode == "idle" {
			phase = "hold"
		}
		p("server       pids %v: cpu %.2f s connecting (%.2f s until the last subscription, %.2f s settling after it; %.0f µs per connection), %.2f s during %s (%.1f%% of one core over %.1f s)",
			s.PIDs, s.CPUConnect.Seconds(), s.CPUSubscribe.Seconds(), s.CPUSettle.Seconds(), float64(s.CPUPerConn)/float64(time.Microsecond),
			s.CPUPhase.Seconds(), phase, s.CPUPhasePct, s.PhaseSeconds)
		if m := r.Messages; m != nil && m.Delivered > 0 {
			p("             %.2f µs of server cpu per delivered message", float64(s.CPUPhase.Microseconds())/float64(m.Delivered))
		}
		p("             rss before %s, after connect %s, after %s, peak %s; %.1f KiB per connection",
			mib(s.RSSBefore), mib(s.RSSAfterConnect), mib(s.RSSAfter), mib(s.RSSPeak), s.RSSPerConn/1024)
	}
	if len(r.HoldCPU) > 0 {
		var secs []string
		for _, v := range r.HoldCPU {
			secs = append(secs, fmt.Sprintf("%.1f", v))
		}
		p("             cpu in each second of the hold (%% of one core): %s", strings.Join(secs, " "))
	}
	p("loadgen      cpu %.2f s total, %.2f s during the run; elapsed %s",
		r.Loadgen.CPUTotal.Seconds(), r.Loadgen.CPUPhase.Seconds(), r.Elapsed.Round(time.Millisecond))
	m := r.Machine
	p("machine      %d CPUs busy %.2f s of %.2f s during the run (%.2f s of it in interrupts); %.2f s not in loadgen or the server",
		m.CPUs, m.BusyPhase.Seconds(), float64(m.CPUs)*m.PhaseSeconds, m.IRQPhase.Seconds(), m.OthersPhase.Seconds())
	return b.String()
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= 100*time.Microsecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0fµs", float64(d)/1e3)
}

func dist(s stats.Summary) string {
	if s.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s", ms(s.P50), ms(s.P99), ms(s.Max))
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func counts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
