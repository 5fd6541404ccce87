package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-ws/herald/scripts/loadgen/internal/trigger"
)

// coldRun is one start of the measured process.
type coldRun struct {
	// Listening is process start to the first request that got any HTTP
	// answer.
	Listening time.Duration `json:"listening_ns"`
	// FirstEvent is process start to the first 200 of POST /events: the
	// first event stored.
	FirstEvent time.Duration `json:"first_event_ns"`
	Attempts   int           `json:"attempts"`
	// Stop is SIGTERM to exit.
	Stop     time.Duration `json:"stop_ns"`
	ExitCode int           `json:"exit_code"`
	Error    string        `json:"error,omitempty"`
}

type coldReport struct {
	Mode    string        `json:"mode"`
	Command []string      `json:"command"`
	Runs    []coldRun     `json:"runs"`
	Median  time.Duration `json:"first_event_median_ns"`
	Min     time.Duration `json:"first_event_min_ns"`
	Max     time.Duration `json:"first_event_max_ns"`
	Failed  int           `json:"failed"`
}

// coldLimit bounds one run's wait for its first event.
const coldLimit = 30 * time.Second

// runColdStart starts cfg.Command cfg.Runs times. Each time it posts one
// event in a tight loop from the moment of the start until one is accepted,
// then stops the process with SIGTERM.
func runColdStart(ctx context.Context, cfg config, log *slog.Logger, stdout, stderr io.Writer) error {
	api := &trigger.API{Base: cfg.API, AppID: cfg.AppID, Key: cfg.Key, Secret: cfg.Secret,
		HTTP: trigger.NewHTTPClient(1, 2*time.Second)}
	rep := coldReport{Mode: "coldstart", Command: cfg.Command}
	for i := range cfg.Runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := coldOnce(ctx, cfg, api)
		// A kept-alive connection would belong to the stopped process.
		api.HTTP.CloseIdleConnections()
		log.Info("cold start", "run", i+1, "first_event", r.FirstEvent, "listening", r.Listening, "stop", r.Stop, "exit", r.ExitCode, "err", r.Error)
		rep.Runs = append(rep.Runs, r)
	}
	var ok []time.Duration
	for _, r := range rep.Runs {
		if r.Error == "" {
			ok = append(ok, r.FirstEvent)
		} else {
			rep.Failed++
		}
	}
	if len(ok) > 0 {
		slices.Sort(ok)
		rep.Min, rep.Max = ok[0], ok[len(ok)-1]
		rep.Median = ok[len(ok)/2]
		if len(ok)%2 == 0 {
			rep.Median = (ok[len(ok)/2-1] + ok[len(ok)/2]) / 2
		}
	}
	text := stdout
	if cfg.JSON {
		text = stderr
	}
	var b strings.Builder
	fmt.Fprintf(&b, "coldstart: %s, %d runs\n", strings.Join(cfg.Command, " "), cfg.Runs)
	for i, r := range rep.Runs {
		fmt.Fprintf(&b, "  run %2d  first event %s  listening %s  attempts %d  stop %s  exit %d %s\n",
			i+1, ms(r.FirstEvent), ms(r.Listening), r.Attempts, ms(r.Stop), r.ExitCode, r.Error)
	}
	fmt.Fprintf(&b, "first event stored: median %s, min %s, max %s; failed runs %d\n", ms(rep.Median), ms(rep.Min), ms(rep.Max), rep.Failed)
	if _, err := io.WriteString(text, b.String()); err != nil {
		return err
	}
	if cfg.JSON {
		out, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(append(out, '\n')); err != nil {
			return err
		}
	}
	if rep.Failed > 0 {
		return fmt.Errorf("%d of %d cold start runs failed", rep.Failed, cfg.Runs)
	}
	return nil
}

func coldOnce(ctx context.Context, cfg config, api *trigger.API) coldRun {
	var r coldRun
	var out tail
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = os.Environ()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Error = fmt.Sprintf("starting: %v", err)
		return r
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ev := []trigger.Event{{Name: "coldstart", Channel: "coldstart", Data: `{"cold":true}`}}
	deadline := start.Add(coldLimit)
	for {
		r.Attempts++
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		status, err := api.Publish(actx, ev)
		cancel()
		now := time.Since(start)
		if status != 0 && r.Listening == 0 {
			r.Listening = now
		}
		if err == nil {
			r.FirstEvent = now
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && status == 0 && r.Listening == 0 {
			r.Listening = now // accepted the connection, but no answer yet
		}
		select {
		case err := <-exited:
			r.Error = fmt.Sprintf("exited before accepting an event (%v): %s", err, out.String())
			return r
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Error = fmt.Sprintf("no event accepted in %s (last: %v)", coldLimit, err)
			break
		}
		sleep(ctx, time.Millisecond)
	}

	stopAt := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		if r.Error == "" {
			r.Error = "did not stop within 15 s of SIGTERM"
		}
	}
	r.Stop = time.Since(stopAt)
	r.ExitCode = cmd.ProcessState.ExitCode()
	return r
}

// tail keeps the last few KiB a process wrote, for the report of a failed
// run.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
