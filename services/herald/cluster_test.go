package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dialPositioned connects to a gateway and subscribes to channel with
// positions, resuming from resume when it is not empty, and returns the
// socket and the subscribe's answer.
func dialPositioned(t *testing.T, gw *proc, channel, resume string) (*websocket.Conn, frame) {
	t.Helper()
	ws, _ := dial(t, strings.Replace(gw.base, "http", "ws", 1)+"/app/"+splitAppKey)
	data := map[string]any{"channel": channel, "positions": true}
	if resume != "" {
		data["resume"] = resume
	}
	return ws, subscribeWith(t, ws, data)
}

// post publishes one event and returns the status and body.
func post(client *http.Client, base, channel, event, data string) (int, string, error) {
	body, _ := json.Marshal(map[string]string{"name": event, "channel": channel, "data": data})
	path := "/apps/" + splitAppID + "/events"
	q := signing.SignRequest("POST", path, nil, body, splitAppKey, splitAppSecret, time.Now())
	res, err := client.Post(base+path+"?"+q, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// eventNumber reads the n of an event whose data is {"n":…}.
func eventNumber(t *testing.T, f frame) int {
	t.Helper()
	var s string
	var d struct{ N int }
	if err := json.Unmarshal(f.Data, &s); err != nil || json.Unmarshal([]byte(s), &d) != nil {
		t.Fatalf("event data %s", f.Data)
	}
	return d.N
}

// A rolling restart of all three nodes of the NATS cluster, one after
// another as an operator upgrades them (stop, start on the same store,
// wait until the node has caught up, next), while one event every 20 ms
// is triggered: no request fails (each waits within
// HERALD_PUBLISH_RETRY_FOR through the elections and reconnects) and a
// client of a gateway gets every accepted event once, in order, its
// gateway filling what it missed while its own connection moved.
func TestRollingRestartOfTheNATSCluster(t *testing.T) {
	dir := binaries(t)
	cluster := natstest.NewCluster(t, 3)
	env := []string{"NATS_URL=" + cluster.URLs(), "HERALD_STREAM_REPLICAS=3", "HERALD_PUBLISH_RETRY_FOR=30s"}
	gw := startProc(t, dir, "gateway", "REVERB_SERVER_PORT", env...)
	trig := startProc(t, dir, "trigger", "HERALD_TRIGGER_PORT", env...)
	waitReadyOrLog(t, gw)
	waitReadyOrLog(t, trig)
	cluster.WaitHealthy(20 * time.Second)

	ws, _ := dialPositioned(t, gw, "orders", "")
	frames := make(chan frame, 10000)
	go func() {
		defer close(frames)
		for {
			_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				return
			}
			frames <- f
		}
	}()

	// One publisher at a steady rate: the order of accepted events is
	// the order of the requests.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted int
		failures []string
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 45 * time.Second}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 1; ctx.Err() == nil; n++ {
			code, body, err := post(client, trig.base, "orders", "tick", fmt.Sprintf(`{"n":%d}`, n))
			mu.Lock()
			if err != nil || code != http.StatusOK {
				failures = append(failures, fmt.Sprintf("event %d: %d %s %v", n, code, body, err))
			} else {
				accepted = n
			}
			mu.Unlock()
			if err != nil || code != http.StatusOK {
				return
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()

	// Events accepted before, between and after the restarts, however slow
	// a loaded machine makes the requests.
	acceptedMore := func(n int) {
		t.Helper()
		mu.Lock()
		target := accepted + n
		mu.Unlock()
		poll.Until(t, 2*poll.Patience, fmt.Sprintf("%d more events accepted", n), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return accepted >= target || len(failures) > 0
		})
	}
	acceptedMore(40)
	for i := range 3 {
		start := time.Now()
		cluster.Stop(i)
		time.Sleep(500 * time.Millisecond) // the outage
		cluster.Start(i)
		cluster.WaitFormed()
		cluster.WaitHealthy(30 * time.Second)
		t.Logf("node %d restarted and caught up in %s", i+1, time.Since(start).Round(time.Millisecond))
		acceptedMore(20)
	}
	acceptedMore(40)
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, f := range failures {
		t.Error(f)
	}
	if accepted < 100 {
		t.Fatalf("only %d events accepted", accepted)
	}

	// Every accepted event once and in order (a request cut short by the
	// end of the test may add one more at the end).
	want := 1
	deadline := time.After(30 * time.Second)
	for want <= accepted {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("the socket closed after event %d of %d\n%s", want-1, accepted, gw.log)
			}
			if f.Event != "tick" {
				continue
			}
			if n := eventNumber(t, f); n != want {
				t.Fatalf("got event %d, want %d (of %d accepted)", n, want, accepted)
			}
			if f.Position == "" {
				t.Fatalf("event %d without a position", want)
			}
			want++
		case <-deadline:
			t.Fatalf("the client got %d of %d accepted events\n%s", want-1, accepted, gw.log)
		}
	}
	t.Logf("%d events accepted and delivered once, in order", accepted)
}

// The whole NATS cluster stopped and started again on the same stores
// while a gateway and the trigger API keep running. What the stores hold
// survives: the app's events stream, at R3, with every event inside the
// replay window. While no node runs, the API answers 503 once
// HERALD_PUBLISH_RETRY_FOR has passed. Afterwards, positions taken
// before the stop stay valid: a client resuming from its last position
// gets the events it missed before the stop and those triggered after
// the start, once and in order, then herald:resumed; a client whose
// position has left the window (here beyond the per-channel cap) gets
// herald:resume_failed with window_exceeded.
func TestWholeNATSClusterStoppedAndStarted(t *testing.T) {
	dir := binaries(t)
	cluster := natstest.NewCluster(t, 3)
	env := []string{"NATS_URL=" + cluster.URLs(), "HERALD_STREAM_REPLICAS=3", "HERALD_PUBLISH_RETRY_FOR=2s",
		"HERALD_REPLAY_MAX_EVENTS=20"}
	gw := startProc(t, dir, "gateway", "REVERB_SERVER_PORT", env...)
	trig := startProc(t, dir, "trigger", "HERALD_TRIGGER_PORT", env...)
	waitReadyOrLog(t, gw)
	waitReadyOrLog(t, trig)
	client := &http.Client{Timeout: 30 * time.Second}
	mustPost := func(channel string, n int) {
		t.Helper()
		if code, body, err := post(client, trig.base, channel, "tick", fmt.Sprintf(`{"n":%d}`, n)); err != nil || code != http.StatusOK {
			t.Fatalf("publish %d on %s: %d %s %v", n, channel, code, body, err)
		}
	}

	// A client reads events 1-10 of orders and leaves; 11-15 follow.
	ws, _ := dialPositioned(t, gw, "orders", "")
	for n := 1; n <= 10; n++ {
		mustPost("orders", n)
	}
	var last string
	for n := 1; n <= 10; n++ {
		f := readFrame(t, ws)
		if got := eventNumber(t, f); f.Event != "tick" || got != n {
			t.Fatalf("frame %+v, want event %d", f, n)
		}
		last = f.Position
	}
	ws.Close()
	for n := 11; n <= 15; n++ {
		mustPost("orders", n)
	}
	// Another one reads event 1 of busy, which then gets 25 more: more
	// than the 20 a channel keeps.
	ws, _ = dialPositioned(t, gw, "busy", "")
	mustPost("busy", 1)
	busyLast := readFrame(t, ws).Position
	ws.Close()
	for n := 2; n <= 26; n++ {
		mustPost("busy", n)
	}

	for i := range 3 {
		cluster.Stop(i)
	}
	start := time.Now()
	code, body, err := post(client, trig.base, "orders", "tick", `{"n":0}`)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, `"error"`) {
		t.Errorf("publish with the cluster down: %d %s %v, want 503 with an error", code, body, err)
	}
	t.Logf("503 after %s with the cluster down", time.Since(start).Round(time.Millisecond))

	for i := range 3 {
		cluster.Start(i)
	}
	cluster.WaitFormed()
	cluster.WaitHealthy(30 * time.Second)

	// On disk: the stream at R3 with every event inside the window. Every
	// stream (the gateways' and presence's state too) has a leader again
	// a few seconds after the nodes are back; until then the services
	// retry.
	nc, err := nats.Connect(cluster.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waitStreamsLed(t, js, start)
	s, err := js.Stream(context.Background(), names.EventsStream(splitAppID))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.State.Msgs != 15+20 {
		t.Errorf("after the restart: %d replicas, %d events, want 3 and 35", info.Config.Replicas, info.State.Msgs)
	}
	waitReadyOrLog(t, trig)
	waitReadyOrLog(t, gw)
	for n := 16; n <= 20; n++ {
		mustPost("orders", n)
	}

	// Resuming from before the stop: 11-20, once, in order.
	ws, ok := dialPositioned(t, gw, "orders", last)
	var okData struct{ Position string }
	var okString string
	_ = json.Unmarshal(ok.Data, &okString)
	_ = json.Unmarshal([]byte(okString), &okData)
	if okData.Position != last {
		t.Errorf("subscription_succeeded at %q, want the resumed position %q", okData.Position, last)
	}
	for n := 11; n <= 20; n++ {
		f := readFrame(t, ws)
		if f.Event != "tick" || eventNumber(t, f) != n {
			t.Fatalf("frame %+v, want event %d", f, n)
		}
	}
	if f := readFrame(t, ws); f.Event != "herald:resumed" || !strings.Contains(string(f.Data), `\"replayed\":10`) {
		t.Fatalf("after the replay: %+v, want herald:resumed with 10 replayed", f)
	}
	mustPost("orders", 21)
	if f := readFrame(t, ws); f.Event != "tick" || eventNumber(t, f) != 21 {
		t.Fatalf("live after the resume: %+v", f)
	}

	// From a position beyond the channel's cap: resume_failed.
	ws, _ = dialPositioned(t, gw, "busy", busyLast)
	if f := readFrame(t, ws); f.Event != "herald:resume_failed" || !strings.Contains(string(f.Data), "window_exceeded") {
		t.Fatalf("resuming from before the cap: %+v, want herald:resume_failed window_exceeded", f)
	}
}

// waitStreamsLed waits until every stream of the account answers with a
// leader, and logs how long after since that took.
func waitStreamsLed(t *testing.T, js jetstream.JetStream, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		lister := js.StreamNames(ctx)
		var all []string
		for n := range lister.Name() {
			all = append(all, n)
		}
		err := lister.Err()
		led, total := 0, len(all)
		for _, n := range all {
			if s, err := js.Stream(ctx, n); err == nil {
				if info, err := s.Info(ctx); err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
					led++
				}
			}
		}
		cancel()
		if err == nil && total > 0 && led == total {
			t.Logf("%d streams led %s after the cluster was stopped", total, time.Since(since).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d streams led 40 s after the restart (%v)", led, total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
