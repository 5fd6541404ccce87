package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
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
	c := startClusterAPI(t)

	// Load: publishers in a closed loop, each event's data unique.
	const publishers = 6
	var l load
	for p := range publishers {
		l.wg.Go(func() {
			for i := 0; !l.stop.Load(); i++ {
				body := fmt.Sprintf(`{"name":"e","data":"p%d-%d","channels":["load-%d","cache-load-%d"]}`, p, i, p, p)
				got := c.f.do(t, req{path: "/apps/app1/events", body: body})
				if got.status != http.StatusOK {
					l.fail(fmt.Sprintf("p%d-%d: %d %s", p, i, got.status, got.raw))
					continue
				}
				l.accepted.Add(1)
			}
		})
	}
	l.progress(t, "before the faults", 50)
	old := c.leader(t)
	c.stepDown(t)
	l.progress(t, "after the step-down", 50)
	lost := c.leader(t)
	t.Logf("stream leader %s stepped down; %s leads now and is shut down", old.Name(), lost.Name())
	lost.Shutdown()
	lost.WaitForShutdown()
	l.progress(t, "after the node was lost", 100)
	l.end(t)

	if len(l.failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(l.failures), int(l.accepted.Load())+len(l.failures), l.failures[0])
	}
	// Every accepted event once on each of its channels: read the whole
	// stream back.
	seen := map[string]int{}
	want := int(l.accepted.Load()) * 2
	c.readStream(t, func() bool { return len(seen) >= want }, func(m jetstream.Msg) {
		seen[m.Subject()+" "+string(m.Data())]++
	})
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
			len(seen), dups, want, l.accepted.Load())
	}
	t.Logf("%d requests accepted, none failed, each event stored once", l.accepted.Load())
}

// clusterAPI is a trigger API on a 3-node cluster, its app's streams at R3.
type clusterAPI struct {
	ctx     context.Context
	servers []*server.Server
	stream  string
	f       *fixture
	// check is a second client, for the test's own reads and the
	// step-downs.
	check *nats.Conn
	js    jetstream.JetStream
}

func startClusterAPI(t *testing.T) *clusterAPI {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := natstest.StartCluster(t, 3)
	c := &clusterAPI{servers: servers, stream: names.EventsStream("app1")}

	// The API's connection goes first to the node that will lead the
	// stream (the meta leader creates it there more often than not; the
	// tests find the real leader), so that losing that node also loses
	// the connection.
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c.ctx = ctx
	a := startAPI(t, nc, testApps[:1], api.Options{Stream: events.StreamOptions{Replicas: 3}})
	c.f = &fixture{ts: httptest.NewServer(a.Handler())}
	t.Cleanup(c.f.ts.Close)

	c.check, err = nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.check.Close)
	if c.js, err = jetstream.New(c.check); err != nil {
		t.Fatal(err)
	}
	return c
}

// leader waits for the node that leads the app's events stream.
func (c *clusterAPI) leader(t *testing.T) *server.Server {
	t.Helper()
	var leader *server.Server
	poll.Until(t, 30*time.Second, "a leader of the stream", func() bool {
		for _, s := range c.servers {
			if s.Running() && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, c.stream) {
				leader = s
				return true
			}
		}
		return false
	})
	return leader
}

// readStream reads the events stream from its start, handing each message
// to each, until done holds or a fetch finds nothing more.
func (c *clusterAPI) readStream(t *testing.T, done func() bool, each func(jetstream.Msg)) {
	t.Helper()
	cons, err := c.js.OrderedConsumer(c.ctx, c.stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for !done() {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			each(m)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// load is the state of publishers running in a closed loop until stop.
type load struct {
	stop     atomic.Bool
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, msg)
}

// progress waits until n more requests were accepted; it fails the test
// (and returns) after 30 s without them, or once the load stopped.
func (l *load) progress(t *testing.T, what string, n int64) {
	t.Helper()
	target := l.accepted.Load() + n
	poll.Within(30*time.Second, func() bool { return l.accepted.Load() >= target || l.stop.Load() })
	if l.accepted.Load() < target {
		t.Errorf("%s: %d accepted, none more", what, l.accepted.Load())
	}
}

// end stops the publishers and waits for them; a progress that failed
// ends the test there.
func (l *load) end(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// stepDown asks the events stream's leader to step down.
func (c *clusterAPI) stepDown(t *testing.T) {
	t.Helper()
	if _, err := c.check.Request("$JS.API.STREAM.LEADER.STEPDOWN."+c.stream, nil, 5*time.Second); err != nil {
		t.Fatalf("stepping the stream leader down: %v", err)
	}
}

// Batches with several events on one channel, published while the stream's
// leader steps down again and again and then while the node that leads it
// is shut down, are stored in the order they were sent on every channel:
// a retry after a lost ack or an election never puts an event behind a
// later one of its channel. The cache stream keeps each cache channel's
// last event. Half the publishers send an idempotency key.
func TestBatchesKeepTheirOrderPerChannelThroughLeaderElections(t *testing.T) {
	c := startClusterAPI(t)

	const (
		publishers = 6
		perChannel = 3 // events of each channel in one batch
	)
	channels := func(p int) [2]string { return [2]string{fmt.Sprintf("order-%d", p), fmt.Sprintf("cache-order-%d", p)} }
	var (
		l       load
		batches [publishers]int // accepted batches of each publisher
	)
	for p := range publishers {
		l.wg.Go(func() {
			chs := channels(p)
			for i := 0; !l.stop.Load(); i++ {
				// Events of the two channels interleaved, each channel's
				// data counting up across the publisher's batches.
				var items []string
				for k := range 2 * perChannel {
					items = append(items, fmt.Sprintf(`{"channel":%q,"name":"e","data":"%d"}`, chs[k%2], i*perChannel+k/2))
				}
				r := req{path: "/apps/app1/batch_events", body: `{"batch":[` + strings.Join(items, ",") + `]}`}
				if p%2 == 1 {
					r.header = http.Header{"X-Idempotency-Key": {fmt.Sprintf("p%d-%d", p, i)}}
				}
				got := c.f.do(t, r)
				if got.status != http.StatusOK {
					l.fail(fmt.Sprintf("p%d batch %d: %d %s", p, i, got.status, got.raw))
					l.stop.Store(true)
					return
				}
				batches[p] = i + 1
				l.accepted.Add(1)
			}
		})
	}

	l.progress(t, "before the faults", 30)
	for range 4 {
		c.stepDown(t)
		l.progress(t, "after a step-down", 30)
	}
	lost := c.leader(t)
	lost.Shutdown()
	lost.WaitForShutdown()
	l.progress(t, "after the node was lost", 60)
	l.end(t)
	if len(l.failures) > 0 {
		t.Fatalf("%d batches failed, first: %s", len(l.failures), l.failures[0])
	}

	// Each channel's events, read back in stream order.
	stored := map[string][]string{}
	total := 0
	for p := range publishers {
		total += 2 * perChannel * batches[p]
	}
	n := 0
	c.readStream(t, func() bool { return n >= total }, func(m jetstream.Msg) {
		n++
		stored[m.Subject()] = append(stored[m.Subject()], string(m.Data()))
	})
	cache, err := c.js.Stream(c.ctx, names.CacheStream("app1"))
	if err != nil {
		t.Fatal(err)
	}
	for p := range publishers {
		n := perChannel * batches[p]
		want := make([]string, n)
		for i := range want {
			want[i] = strconv.Itoa(i)
		}
		for _, ch := range channels(p) {
			got := stored[names.EventSubject("app1", ch)]
			if !slices.Equal(got, want) {
				first := 0
				for first < min(len(got), n) && got[first] == want[first] {
					first++
				}
				t.Errorf("%s: stored %d events, want 0..%d in order; first out of place at %d: %v",
					ch, len(got), n-1, first, got[max(0, first-3):min(len(got), first+5)])
			}
		}
		last, err := cache.GetLastMsgForSubject(c.ctx, names.CacheSubject("app1", channels(p)[1]))
		if err != nil {
			t.Fatalf("reading the cache of %s: %v", channels(p)[1], err)
		}
		if got := string(last.Data); got != strconv.Itoa(n-1) {
			t.Errorf("%s caches event %s, want the last one, %d", channels(p)[1], got, n-1)
		}
	}
	t.Logf("%d batches of %d events accepted", l.accepted.Load(), 2*perChannel)
}
