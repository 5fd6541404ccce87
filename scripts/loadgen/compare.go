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

// fromServer is a figure of the -server-pid processes: none in a report
// made without -server-pid.
func fromServer(f func(*serverReport) float64) func(*report) (float64, bool) {
	return func(r *report) (float64, bool) {
		if r.Server == nil {
			return 0, false
		}
		return f(r.Server), true
	}
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
			if r.Latency == nil || r.Latency.Count == 0 {
				return 0, false
			}
			return float64(r.Latency.P99) / float64(time.Millisecond), true
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
		{"RSS per connection", fromServer(func(s *serverReport) float64 { return s.RSSPerConn / 1024 }),
			func(v float64) string { return fmt.Sprintf("%.1f KiB", v) }},
		{"server CPU per connect + subscribe", fromServer(func(s *serverReport) float64 {
			return float64(s.CPUPerConn) / float64(time.Microsecond)
		}), func(v float64) string { return fmt.Sprintf("%.0f µs", v) }},
		{"connections a second", func(r *report) (float64, bool) {
			s := r.Connections.Ramp.Seconds()
			return float64(r.Connections.Opened) / s, s > 0
		}, func(v float64) string { return fmt.Sprintf("%.0f/s", v) }},
		{"server CPU from 2 s after the last subscribe", fromServer(func(s *serverReport) float64 { return s.CPUPhasePct }),
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
		name, h, c, err := readCompared[report](a)
		if err != nil {
			return err
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

// readCompared reads the reports of one -compare argument,
// NAME=HERALD.json[,CENTRIFUGO.json]; c is nil without a second file.
func readCompared[R any](arg string) (name string, h, c *R, err error) {
	name, files, ok := strings.Cut(arg, "=")
	if !ok {
		return "", nil, nil, fmt.Errorf("-compare: %q is not NAME=FILE[,FILE]", arg)
	}
	hf, cf, _ := strings.Cut(files, ",")
	if h, err = readReport[R](hf); err != nil {
		return "", nil, nil, err
	}
	if cf != "" {
		if c, err = readReport[R](cf); err != nil {
			return "", nil, nil, err
		}
	}
	return name, h, c, nil
}

// readReport reads a report written by -json.
func readReport[R any](path string) (*R, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-compare: %w", err)
	}
	var r R
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("-compare: reading %s: %w", path, err)
	}
	return &r, nil
}
