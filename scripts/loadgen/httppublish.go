package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/scripts/loadgen/internal/client"
	"github.com/herald-ws/herald/scripts/loadgen/internal/payload"
	"github.com/herald-ws/herald/scripts/loadgen/internal/stats"
	"github.com/herald-ws/herald/scripts/loadgen/internal/trigger"
	"github.com/herald-ws/herald/shared/signing"
)

// Servers the closed-loop HTTP publish mode can drive.
const (
	targetHerald     = "herald"     // signed POST /apps/{id}/events
	targetCentrifugo = "centrifugo" // POST /api/publish with X-API-Key
)

// publishReport is the outcome of a -publish run; its JSON form is the
// -json output.
type publishReport struct {
	Mode       string        `json:"mode"`
	Target     string        `json:"target"`
	API        string        `json:"api"`
	Publishers int           `json:"publishers"`
	Channels   int           `json:"channels"`
	Size       int           `json:"size"`
	Duration   time.Duration `json:"duration_ns"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	// OK counts requests answered 200: for Herald, events stored.
	OK        uint64        `json:"ok"`
	Failed    uint64        `json:"failed"`
	LastError string        `json:"last_error,omitempty"`
	PerSec    float64       `json:"requests_per_sec"`
	Latency   stats.Summary `json:"latency"`
	// ServerCPU is the CPU the -server-pid processes spent during the run;
	// ServerCPUPerRequest divides it by OK.
	ServerCPU           time.Duration `json:"server_cpu_ns"`
	ServerCPUPerRequest time.Duration `json:"server_cpu_per_request_ns"`
	LoadgenCPU          time.Duration `json:"loadgen_cpu_ns"`
	Machine             machineReport `json:"machine"`
}

// publisher sends one kind of publish request.
type publisher interface {
	publish(ctx context.Context, channel, data string) error
}

// runPublish is the closed-loop HTTP publish mode: -publishers goroutines,
// each sending its next request as soon as the previous one is answered,
// for -duration.
func runPublish(ctx context.Context, cfg config, log *slog.Logger, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Dur+cfg.Timeout+time.Minute)
	defer cancel()
	hc := trigger.NewHTTPClient(cfg.Publishers, cfg.Timeout)
	var pub publisher
	switch cfg.Target {
	case targetCentrifugo:
		pub = &centrifugoPublisher{url: cfg.API + "/api/publish", key: cfg.CentrifugoKey, http: hc}
	default:
		pub = &heraldPublisher{api: cfg.API, appID: cfg.AppID, key: cfg.Key, secret: cfg.Secret, http: hc}
	}
	// One warm-up request per publisher opens the keep-alive connections
	// outside the measured window, and fails the run early when the server
	// refuses (wrong key, no history namespace…).
	var warm sync.WaitGroup
	warmErr := make([]error, cfg.Publishers)
	for i := range cfg.Publishers {
		warm.Go(func() { warmErr[i] = pub.publish(ctx, cfg.channel(i%cfg.Chans), payload.Event{}.Data(cfg.Size)) })
	}
	warm.Wait()
	if err := errors.Join(warmErr...); err != nil {
		return fmt.Errorf("warm-up request: %w", err)
	}

	rep := &publishReport{Mode: "publish", Target: cfg.Target, API: cfg.API, Publishers: cfg.Publishers,
		Channels: cfg.Chans, Size: cfg.Size, Duration: cfg.Dur}
	log.Info("publishing", "target", cfg.Target, "publishers", cfg.Publishers, "for", cfg.Dur)
	before, err := takeReading(cfg.PIDs)
	if err != nil {
		return fmt.Errorf("reading the server before the run: %w", err)
	}
	var (
		lat             stats.Histogram
		ok, failed      atomic.Uint64
		mu              sync.Mutex
		lastErr         string
		wg              sync.WaitGroup
		runCtx, stopRun = context.WithTimeout(ctx, cfg.Dur)
	)
	defer stopRun()
	for i := range cfg.Publishers {
		wg.Go(func() {
			ch := i % cfg.Chans
			for seq := uint64(0); runCtx.Err() == nil; seq++ {
				start := time.Now()
				ev := payload.Event{Seq: seq, Channel: uint64(ch), SentAt: start.UnixNano()}
				// The request itself is not cut short by the end of the
				// run: its answer still counts.
				err := pub.publish(ctx, cfg.channel(ch), ev.Data(cfg.Size))
				if err != nil {
					failed.Add(1)
					mu.Lock()
					lastErr = err.Error()
					mu.Unlock()
					continue
				}
				lat.Record(time.Since(start))
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	after, _ := takeReading(cfg.PIDs)

	rep.Elapsed = after.at.Sub(before.at)
	rep.OK, rep.Failed, rep.LastError = ok.Load(), failed.Load(), lastErr
	rep.PerSec = float64(rep.OK) / rep.Elapsed.Seconds()
	rep.Latency = lat.Summary()
	rep.LoadgenCPU = after.self - before.self
	if len(cfg.PIDs) > 0 {
		rep.ServerCPU = after.server.CPU - before.server.CPU
		if rep.OK > 0 {
			rep.ServerCPUPerRequest = rep.ServerCPU / time.Duration(rep.OK)
		}
	}
	rep.Machine = machineReport{CPUs: runtime.NumCPU(), PhaseSeconds: rep.Elapsed.Seconds(),
		BusyPhase: after.machine.Busy - before.machine.Busy, IRQPhase: after.machine.IRQ - before.machine.IRQ}
	rep.Machine.OthersPhase = max(0, rep.Machine.BusyPhase-rep.ServerCPU-rep.LoadgenCPU)
	return rep.write(cfg.JSON, stdout, stderr)
}

func (r *publishReport) write(asJSON bool, stdout, stderr io.Writer) error {
	return writeReport(r.text(), r, asJSON, stdout, stderr)
}

func (r *publishReport) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "publish: %s at %s, %d publisher(s) closed loop over %d channel(s), %d B data, %s\n",
		r.Target, r.API, r.Publishers, r.Channels, r.Size, ms(r.Elapsed))
	fmt.Fprintf(&b, "requests     ok %d (%.0f/s), failed %d; latency %s\n", r.OK, r.PerSec, r.Failed, dist(r.Latency))
	if r.LastError != "" {
		fmt.Fprintf(&b, "             last failure: %s\n", r.LastError)
	}
	fmt.Fprintf(&b, "cpu          server %s (%.1f µs per request), loadgen %s, others %s of %.0f CPU-seconds\n",
		ms(r.ServerCPU), float64(r.ServerCPUPerRequest)/float64(time.Microsecond), ms(r.LoadgenCPU),
		ms(r.Machine.OthersPhase), r.Machine.PhaseSeconds*float64(r.Machine.CPUs))
	return b.String()
}

// heraldPublisher signs each request as the Pusher server SDKs do.
type heraldPublisher struct {
	api, appID, key, secret string
	http                    *http.Client
}

func (p *heraldPublisher) publish(ctx context.Context, channel, data string) error {
	path := "/apps/" + p.appID + "/events"
	body, err := json.Marshal(trigger.Event{Name: payload.EventName, Channel: channel, Data: data})
	if err != nil {
		return fmt.Errorf("encoding the event: %w", err)
	}
	q := signing.SignRequest(http.MethodPost, path, nil, body, p.key, p.secret, time.Now())
	return post(ctx, p.http, p.api+path+"?"+q, body, nil)
}

// centrifugoPublisher uses Centrifugo's server API; the data is the same
// JSON object, sent as JSON rather than as a string.
type centrifugoPublisher struct {
	url, key string
	http     *http.Client
}

func (p *centrifugoPublisher) publish(ctx context.Context, channel, data string) error {
	body, err := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}{channel, json.RawMessage(data)})
	if err != nil {
		return fmt.Errorf("encoding the publication: %w", err)
	}
	return post(ctx, p.http, p.url, body, http.Header{"X-Api-Key": {p.key}})
}

// post sends one request and fails for any answer but 200, and for a 200
// whose JSON body holds an "error" member (Centrifugo's API errors).
func post(ctx context.Context, hc *http.Client, url string, body []byte, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if bytes.Contains(msg, []byte(`"error"`)) {
		return fmt.Errorf("POST: %s", strings.TrimSpace(string(msg)))
	}
	return nil
}

// validatePublish checks the flags of the -publish mode.
func (c *config) validatePublish() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Target {
	case targetHerald:
		if c.AppID == "" || c.Key == "" || c.Secret == "" {
			bad("-app-id, -key and -secret are required with -target herald")
		}
	case targetCentrifugo:
		if c.CentrifugoKey == "" {
			bad("-centrifugo-api-key is required with -target centrifugo")
		}
	default:
		bad("-target must be %s or %s", targetHerald, targetCentrifugo)
	}
	if _, err := client.CheckURL(c.API, "http", "https"); err != nil {
		bad("-api: %v", err)
	}
	c.API = strings.TrimSuffix(c.API, "/")
	if c.Publishers < 1 || c.Publishers > 1000 {
		bad("-publishers must be 1 to 1000")
	}
	if c.Chans < 1 || c.Chans > maxConns {
		bad("-channels must be 1 to %d", maxConns)
	}
	if c.Dur <= 0 || c.Dur > maxDuration {
		bad("-duration must be positive and at most %s", maxDuration)
	}
	if c.Size < 0 || c.Size > 1<<20 {
		bad("-size must be 0 to 1 MiB")
	}
	if c.Timeout <= 0 {
		bad("-timeout must be positive")
	}
	if len(c.Command) > 0 {
		bad("unexpected arguments %q (a command only goes with -coldstart)", c.Command)
	}
	return errors.Join(errs...)
}

// isPublishCompare reports whether -compare was given reports of -publish
// runs (the first file tells).
func isPublishCompare(args []string) bool {
	if len(args) == 0 {
		return false
	}
	_, files, _ := strings.Cut(args[0], "=")
	first, _, _ := strings.Cut(files, ",")
	r, err := readReport[publishReport](first)
	return err == nil && r.Mode == "publish"
}

// runPublishCompare prints the table of closed-loop HTTP publish runs,
// Herald's and Centrifugo's side by side: each argument is
// NAME=HERALD.json[,CENTRIFUGO.json], the ratio is Herald's requests a
// second over Centrifugo's.
func runPublishCompare(args []string, stdout io.Writer) error {
	var b strings.Builder
	b.WriteString("| HTTP publish, closed loop | Herald req/s | Centrifugo req/s | ratio | Herald p50 / p99 | Centrifugo p50 / p99 | server CPU per request, Herald / Centrifugo | failed, Herald / Centrifugo |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
	for _, a := range args {
		name, h, c, err := readCompared[publishReport](a)
		if err != nil {
			return err
		}
		cs, ratio, cLat, cCPU, cFailed := "–", "–", "–", "–", "–"
		if c != nil {
			cs = fmt.Sprintf("%.0f", c.PerSec)
			if c.PerSec > 0 {
				ratio = fmt.Sprintf("%.2f×", h.PerSec/c.PerSec)
			}
			cLat = ms(c.Latency.P50) + " / " + ms(c.Latency.P99)
			cCPU, cFailed = us(c.ServerCPUPerRequest), strconv.FormatUint(c.Failed, 10)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s / %s | %s | %s / %s | %d / %s |\n",
			name, h.PerSec, cs, ratio, ms(h.Latency.P50), ms(h.Latency.P99), cLat,
			us(h.ServerCPUPerRequest), cCPU, h.Failed, cFailed)
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}
