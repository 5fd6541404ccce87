package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/scripts/loadgen/internal/client"
	"github.com/herald-ws/herald/scripts/loadgen/internal/procstat"
	"github.com/herald-ws/herald/scripts/loadgen/internal/stats"
	"github.com/herald-ws/herald/scripts/loadgen/internal/trigger"
	"github.com/herald-ws/herald/shared/signing"
)

// runLoad connects the subscribers, then either triggers events or holds
// the connections idle, and reports.
func runLoad(ctx context.Context, cfg config, log *slog.Logger, stdout, stderr io.Writer) error {
	// Everything below is bounded: connecting at the ramp rate (plus the
	// handshake timeout), the run, the drain, and a margin to close.
	budget := time.Duration(float64(cfg.Conns)/cfg.Ramp*float64(time.Second)) +
		cfg.Timeout + cfg.Settle + cfg.Dur + cfg.Late + cfg.Drain + time.Minute
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	nofile, err := raiseNoFile()
	if err != nil {
		log.Warn("raising the open file limit", "err", err)
	}
	if need := uint64(cfg.Conns) + 64; nofile < need {
		log.Warn("open file limit below the connection count", "limit", nofile, "conns", cfg.Conns)
	}

	rep := &report{Mode: "load", Config: cfg.summary()}
	if cfg.Idle {
		rep.Mode = "idle"
	}
	before, err := takeReading(cfg.PIDs)
	if err != nil {
		return fmt.Errorf("reading the server before the run: %w", err)
	}
	peak := procstat.StartPeak(cfg.PIDs, 100*time.Millisecond)

	sh := &client.Shared{}
	log.Info("connecting", "conns", cfg.Conns, "gateways", len(cfg.WS), "channels", cfg.Chans)
	conns, cs := connectAll(ctx, cfg, sh)
	subscribed, _ := takeReading(cfg.PIDs)
	rep.Connections = cs
	log.Info("connected", "opened", cs.Opened, "failed", cs.Failed, "took", cs.Ramp.Round(time.Millisecond))
	defer func() { closeAll(conns) }()

	pingCtx, stopPing := context.WithCancel(ctx)
	defer stopPing()
	go pingQuiet(pingCtx, conns)

	sleep(ctx, cfg.Settle)
	connected, _ := takeReading(cfg.PIDs)
	var res *trigger.Result
	if cfg.Idle {
		log.Info("holding", "for", cfg.Dur)
		rep.HoldCPU = holdCPU(ctx, cfg, connected)
	} else {
		res = triggerAndDrain(ctx, cfg, log, sh, conns)
	}
	after, _ := takeReading(cfg.PIDs)
	stopPing()

	// Connections that ended by themselves before the close are drops.
	for _, c := range conns {
		select {
		case <-c.Done():
			rep.Connections.Dropped++
			rep.Connections.DroppedBy[dropCause(c.Err())]++
		default:
		}
	}
	closeAll(conns)
	var tally stats.Tally
	if res != nil {
		for _, c := range conns {
			tally.Add(c.Receiver(), res.Channels[c.ChannelIndex()])
		}
	}
	conns = nil
	peakTotal, peakEach := peak.Stop()

	rep.Pings = pingReport{FromServer: sh.PingsIn.Load(), ToServer: sh.PingsOut.Load(), Pongs: sh.PongsIn.Load(), Errors: sh.ErrorsIn.Load(), Other: sh.OtherIn.Load()}
	if res != nil {
		rep.Events = res
		rep.Messages = &tally
		if res.Accepted > 0 {
			lat := sh.Latency.Summary()
			rep.Latency = &lat
			if last := sh.LastRecvNs.Load(); last > 0 {
				window := time.Unix(0, last).Sub(res.Start)
				rep.DeliveredPerSec = float64(tally.Delivered) / window.Seconds()
			}
		}
	}
	phase := after.at.Sub(connected.at)
	if len(cfg.PIDs) > 0 {
		rep.Server = &serverReport{
			PIDs:            cfg.PIDs,
			CPUConnect:      connected.server.CPU - before.server.CPU,
			CPUSubscribe:    subscribed.server.CPU - before.server.CPU,
			CPUSettle:       connected.server.CPU - subscribed.server.CPU,
			CPUPhase:        after.server.CPU - connected.server.CPU,
			PhaseSeconds:    phase.Seconds(),
			CPUPhasePct:     100 * (after.server.CPU - connected.server.CPU).Seconds() / phase.Seconds(),
			RSSBefore:       before.server.RSS,
			RSSAfterConnect: connected.server.RSS,
			RSSAfter:        after.server.RSS,
			RSSPeak:         peakTotal,
			RSSPeakEach:     peakEach,
		}
		if cs.Opened > 0 {
			rep.Server.CPUPerConn = rep.Server.CPUConnect / time.Duration(cs.Opened)
			rep.Server.RSSPerConn = (float64(connected.server.RSS) - float64(before.server.RSS)) / float64(cs.Opened)
		}
	}
	rep.Machine = machineReport{
		CPUs: runtime.NumCPU(), PhaseSeconds: phase.Seconds(),
		BusyPhase: after.machine.Busy - connected.machine.Busy, IRQPhase: after.machine.IRQ - connected.machine.IRQ,
	}
	rep.Machine.OthersPhase = rep.Machine.BusyPhase - (after.self - connected.self)
	if rep.Server != nil {
		rep.Machine.OthersPhase -= rep.Server.CPUPhase
	}
	rep.Loadgen = loadgenReport{CPUTotal: procstat.Self() - before.self, CPUPhase: after.self - connected.self}
	rep.Elapsed = time.Since(before.at)
	return rep.write(cfg.JSON, stdout, stderr)
}

// holdCPU waits out the hold, reading the server's CPU each second: the
// percent of one core it used in each second of the hold.
func holdCPU(ctx context.Context, cfg config, start reading) []float64 {
	end := start.at.Add(cfg.Dur)
	var pct []float64
	prev := start
	for ctx.Err() == nil {
		d := min(time.Second, time.Until(end))
		if d <= 0 {
			break
		}
		sleep(ctx, d)
		r, err := takeReading(cfg.PIDs)
		if err != nil || len(cfg.PIDs) == 0 {
			continue
		}
		pct = append(pct, 100*(r.server.CPU-prev.server.CPU).Seconds()/r.at.Sub(prev.at).Seconds())
		prev = r
	}
	return pct
}

// reading is the state of the measured processes, loadgen and the machine
// at one moment.
type reading struct {
	at      time.Time
	server  procstat.Sample // summed over the server pids
	self    time.Duration   // loadgen's CPU
	machine procstat.MachineSample
}

func takeReading(pids []int) (reading, error) {
	r := reading{at: time.Now(), self: procstat.Self()}
	var err error
	if len(pids) > 0 {
		_, r.server, err = procstat.ReadAll(pids)
	}
	r.machine, _ = procstat.Machine() // best effort: only the interference figure needs it
	return r, err
}

// connectAll opens cfg.Conns connections at the ramp rate, at most
// cfg.Inflight handshakes at a time, and starts each one's reader.
func connectAll(ctx context.Context, cfg config, sh *client.Shared) ([]*client.Conn, connReport) {
	dialer := &websocket.Dialer{
		NetDialContext:   client.LoopbackDialer(cfg.Timeout).DialContext,
		HandshakeTimeout: cfg.Timeout,
		ReadBufferSize:   2048,
		WriteBufferSize:  1024,
	}
	var (
		mu       sync.Mutex
		conns    = make([]*client.Conn, 0, cfg.Conns)
		failedBy = map[string]int{}
		lastErr  string
		connect  stats.Histogram
		sub      stats.Histogram
		wg       sync.WaitGroup
		sem      = make(chan struct{}, cfg.Inflight)
	)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / cfg.Ramp)
	for i := 0; i < cfg.Conns && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			sleep(ctx, d)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		o := client.Options{URL: cfg.wsURL(i), Dialer: dialer, Timeout: cfg.Timeout, Shared: sh}
		if cfg.Chans > 0 {
			o.ChannelIndex = uint64(i % cfg.Chans)
			o.Channel = cfg.channel(i % cfg.Chans)
			if cfg.Shared != "" {
				o.Extra = []string{cfg.Shared}
			}
		}
		if cfg.Target == targetCentrifugo {
			centrifugoOptions(&o, cfg, i)
		} else if cfg.Chans > 0 {
			if cfg.Private {
				ch := o.Channel
				o.Auth = func(socketID string) string {
					return signing.ChannelAuth(cfg.Key, cfg.Secret, socketID, ch, "")
				}
			}
		}
		wg.Go(func() {
			defer func() { <-sem }()
			hctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			c, err := client.Dial(hctx, o)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failedBy[failCause(err)]++
				lastErr = err.Error()
				return
			}
			connect.Record(c.ConnectTime)
			if o.Channel != "" {
				sub.Record(c.SubscribeTime)
			}
			conns = append(conns, c)
			go c.Run()
		})
	}
	wg.Wait()
	failed := 0
	for _, n := range failedBy {
		failed += n
	}
	return conns, connReport{
		Attempted: cfg.Conns, Opened: len(conns), Failed: failed, FailedBy: failedBy, LastError: lastErr,
		Ramp: time.Since(start), Connect: connect.Summary(), Subscribe: sub.Summary(),
		DroppedBy: map[string]int{},
	}
}

func failCause(err error) string {
	for _, e := range []error{client.ErrDial, client.ErrNoEstablished, client.ErrSubscriptionError, client.ErrNoSubscription} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

func dropCause(err error) string {
	if code := client.CloseCode(err); code != 0 {
		return fmt.Sprintf("close %d", code)
	}
	if client.IsEOF(err) {
		return "eof"
	}
	return "error"
}

// triggerAndDrain sends the events, then waits until every accepted event
// reached every subscriber, nothing arrived for a while, or cfg.Drain ran
// out.
func triggerAndDrain(ctx context.Context, cfg config, log *slog.Logger, sh *client.Shared, conns []*client.Conn) *trigger.Result {
	api := &trigger.API{
		Base: cfg.API, AppID: cfg.AppID, Key: cfg.Key, Secret: cfg.Secret, CentrifugoKey: cfg.CentrifugoKey,
		HTTP: trigger.NewHTTPClient(cfg.Senders, cfg.Timeout),
	}
	chans := make([]string, cfg.Chans)
	for i := range chans {
		chans[i] = cfg.channel(i)
	}
	log.Info("triggering", "rate", cfg.Rate, "for", cfg.Dur, "size", cfg.Size, "batch", cfg.Batch, "senders", cfg.Senders)
	res := api.Run(ctx, trigger.Plan{
		Rate: cfg.Rate, Duration: cfg.Dur, Channels: chans, Batch: cfg.Batch, Size: cfg.Size,
		Senders: cfg.Senders, Late: cfg.Late,
	})
	subs := make([]uint64, cfg.Chans)
	for _, c := range conns {
		subs[c.ChannelIndex()]++
	}
	var expected uint64
	for i, ch := range res.Channels {
		expected += ch.Accepted.Len() * subs[i]
	}
	log.Info("draining", "accepted", res.Accepted, "failed", res.Failed, "expected_messages", expected)
	deadline := time.Now().Add(cfg.Drain)
	last, lastChange := sh.Delivered.Load(), time.Now()
	res.Drain = "timeout"
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got := sh.Delivered.Load()
		if got >= expected {
			res.Drain = "complete"
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 3*time.Second {
			res.Drain = "quiet" // nothing more is coming
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if res.Drain == "timeout" && sh.Delivered.Load() >= expected {
		res.Drain = "complete"
	}
	return &res
}

// pingQuiet pings, as pusher-js does, on connections that heard nothing for
// their activity timeout.
func pingQuiet(ctx context.Context, conns []*client.Conn) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, c := range conns {
				c.PingIfQuiet(now)
			}
		}
	}
}

// closeAll closes every connection and waits, briefly, for the readers.
func closeAll(conns []*client.Conn) {
	for _, c := range conns {
		c.Close()
	}
	deadline := time.After(10 * time.Second)
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-deadline:
			return
		}
	}
}

// raiseNoFile lifts the soft open file limit to the hard one and returns
// the limit in force.
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return l.Cur, fmt.Errorf("setrlimit: %w", err)
		}
	}
	return l.Cur, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
