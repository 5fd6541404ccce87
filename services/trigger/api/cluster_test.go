package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// On a 3-node cluster with the stream at R3, publishing under load while
// the stream's leader steps down, and then while the node that leads it
// (and holds the API's connection) is shut down, fails no request: each
// publish waits through the election and the reconnect, and every event
// is stored exactly once, retries after lost acks included.
func TestPublishesSurviveLeaderElectionsAndALostNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := natstest.StartCluster(t, 3)
	stream := names.EventsStream("app1")

	// The API's connection goes first to the node that will lead the
	// stream (the meta leader creates it there more often than not; the
	// test finds the real leader below), so that losing that node also
	// loses the connection.
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	apps, err := appconf.NewRegistry(testApps[:1])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := api.New(ctx, api.Options{Apps: apps, NC: nc, Now: func() time.Time { return now },
		Stream: events.StreamOptions{Replicas: 3}})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	f := &fixture{ts: httptest.NewServer(a.Handler())}
	t.Cleanup(f.ts.Close)

	// A second client, for the test's own reads and the step-down.
	check, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(check.Close)
	js, err := jetstream.New(check)
	if err != nil {
		t.Fatal(err)
	}

	// Load: publishers in a closed loop, each event's data unique.
	const publishers = 6
	var (
		stop     atomic.Bool
		accepted atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	for p := range publishers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				body := fmt.Sprintf(`{"name":"e","data":"p%d-%d","channels":["load-%d","cache-load-%d"]}`, p, i, p, p)
				got := f.do(t, req{path: "/apps/app1/events", body: body})
				if got.status != http.StatusOK {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("p%d-%d: %d %s", p, i, got.status, got.raw))
					mu.Unlock()
					continue
				}
				accepted.Add(1)
			}
		})
	}
	// progress waits until n more requests were accepted.
	progress := func(what string, n int64) {
		t.Helper()
		target := accepted.Load() + n
		deadline := time.Now().Add(30 * time.Second)
		for accepted.Load() < target {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d requests accepted, none more in 30 s", what, accepted.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	leader := func() *server.Server {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for _, s := range servers {
				if s.Running() && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
					return s
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("the stream has no leader")
		return nil
	}

	progress("before the faults", 50)
	old := leader()
	if _, err := check.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second); err != nil {
		t.Fatalf("stepping the stream leader down: %v", err)
	}
	progress("after the step-down", 50)
	lost := leader()
	t.Logf("stream leader %s stepped down; %s leads now and is shut down", old.Name(), lost.Name())
	lost.Shutdown()
	lost.WaitForShutdown()
	progress("after the node was lost", 100)
	stop.Store(true)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(failures), int(accepted.Load())+len(failures), failures[0])
	}
	// Every accepted event once on each of its channels: read the whole
	// stream back.
	seen := map[string]int{}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := int(accepted.Load()) * 2
	for len(seen) < want {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seen[m.Subject()+" "+string(m.Data())]++
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	dups := 0
	for k, n := range seen {
		if n > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("%s stored %d times", k, n)
			}
		}
	}
	if len(seen) != want || dups > 0 {
		t.Fatalf("%d distinct events stored (%d duplicated), want %d (%d requests accepted × 2 channels)",
			len(seen), dups, want, accepted.Load())
	}
	t.Logf("%d requests accepted, none failed, each event stored once", accepted.Load())
}
