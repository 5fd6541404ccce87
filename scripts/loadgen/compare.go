package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The -compare mode prints the side-by-side table of scripts/bench compare
// from the JSON reports of runs against Herald and Centrifugo:
//
//	loadgen -compare 'fan-out 1,000 × 100/s=herald.json,centrifugo.json' …
//
// Each argument is a scenario's name, then its Herald report and, after a
// comma, its Centrifugo report (absent: the Herald column only). The ratio
// is Herald's figure over Centrifugo's.

// comparedRow is one figure of a scenario.
type comparedRow struct {
	name  string
	value func(r *report) (float64, bool)
	unit  func(v float64) string
}

func perMsg(r *report) (float64, bool) {
	if r.Server == nil || r.Messages == nil || r.Messages.Delivered == 0 {
		return 0, false
	}
	return float64(r.Server.CPUPhase.Microseconds()) / float64(r.Messages.Delivered), true
}

var (
	loadRows = []comparedRow{
		{"server CPU per delivered message", perMsg, func(v float64) string { return fmt.Sprintf("%.2f µs", v) }},
		{"latency p99 (publish → client)", func(r *report) (float64, bool) {
			return float64(r.Latency.P99) / float64(time.Millisecond), r.Latency != nil && r.Latency.Count > 0
		}, func(v float64) string { return fmt.Sprintf("%.0f ms", v) }},
		{"delivered messages a second", func(r *report) (float64, bool) { return r.DeliveredPerSec, r.DeliveredPerSec > 0 },
			func(v float64) string { return fmt.Sprintf("%.0f/s", v) }},
		{"missing + duplicated + out of order", func(r *report) (float64, bool) {
			if r.Messages == nil {
				return 0, false
			}
			return float64(r.Messages.Lost + r.Messages.Duplicates + r.Messages.OutOfOrder), true
		}, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	}
	idleRows = []comparedRow{
		{"RSS per connection", func(r *report) (float64, bool) { return r.Server.RSSPerConn / 1024, r.Server != nil },
			func(v float64) string { return fmt.Sprintf("%.1f KiB", v) }},
		{"server CPU per connect + subscribe", func(r *report) (float64, bool) {
			return float64(r.Server.CPUPerConn) / float64(time.Microsecond), r.Server != nil
		}, func(v float64) string { return fmt.Sprintf("%.0f µs", v) }},
		{"connections a second", func(r *report) (float64, bool) {
			s := r.Connections.Ramp.Seconds()
			return float64(r.Connections.Opened) / s, s > 0
		}, func(v float64) string { return fmt.Sprintf("%.0f/s", v) }},
		{"server CPU from 2 s after the last subscribe", func(r *report) (float64, bool) { return r.Server.CPUPhasePct, r.Server != nil },
			func(v float64) string { return fmt.Sprintf("%.1f%% of a core", v) }},
		{"connections opened / failed", func(r *report) (float64, bool) {
			return float64(r.Connections.Opened), true
		}, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	}
)

func runCompare(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("-compare needs NAME=HERALD.json[,CENTRIFUGO.json] arguments")
	}
	var b strings.Builder
	b.WriteString("| scenario | figure | Herald | Centrifugo | ratio |\n| --- | --- | --- | --- | --- |\n")
	for _, a := range args {
		name, files, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("-compare: %q is not NAME=FILE[,FILE]", a)
		}
		hf, cf, _ := strings.Cut(files, ",")
		h, err := readReport(hf)
		if err != nil {
			return err
		}
		var c *report
		if cf != "" {
			if c, err = readReport(cf); err != nil {
				return err
			}
		}
		rows := loadRows
		if h.Mode == "idle" {
			rows = idleRows
		}
		for _, row := range rows {
			hv, hok := row.value(h)
			hs, cs, ratio := "–", "–", "–"
			if hok {
				hs = row.unit(hv)
			}
			if c != nil {
				if cv, cok := row.value(c); cok {
					cs = row.unit(cv)
					if hok && cv != 0 {
						ratio = fmt.Sprintf("%.2f×", hv/cv)
					}
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, row.name, hs, cs, ratio)
		}
		if h.Connections.Failed > 0 || (c != nil && c.Connections.Failed > 0) {
			fmt.Fprintf(&b, "| %s | connections failed | %d | %s | |\n", name, h.Connections.Failed, failed(c))
		}
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}

func failed(r *report) string {
	if r == nil {
		return "–"
	}
	return fmt.Sprint(r.Connections.Failed)
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-compare: %w", err)
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("-compare: reading %s: %w", path, err)
	}
	return &r, nil
}
