// Package trigger publishes the load generator's events through the signed
// Pusher HTTP API, at a steady rate, and keeps the ledger of which events
// the API accepted.
package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/scripts/loadgen/internal/client"
	"github.com/herald-ws/herald/scripts/loadgen/internal/payload"
	"github.com/herald-ws/herald/scripts/loadgen/internal/stats"
	"github.com/herald-ws/herald/shared/signing"
)

// API is a signed client of one app's HTTP API.
type API struct {
	Base   string // http://127.0.0.1:8080, without a trailing slash
	AppID  string
	Key    string
	Secret string
	HTTP   *http.Client
	// CentrifugoKey, when set, sends each event to Centrifugo's server API
	// instead (POST Base/api/publish, X-API-Key), its data as a JSON
	// object; one event a request.
	CentrifugoKey string
}

// NewHTTPClient returns a keep-alive client that only dials loopback.
func NewHTTPClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         client.LoopbackDialer(5 * time.Second).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// Event is one event of a request.
type Event struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	Data    string `json:"data"`
}

// Publish sends one event (POST /apps/{id}/events) or, with more than one,
// a batch (POST /apps/{id}/batch_events). It returns the HTTP status; err is
// set for transport failures and for any status but 200.
func (a *API) Publish(ctx context.Context, evs []Event) (int, error) {
	if a.CentrifugoKey != "" {
		return a.publishCentrifugo(ctx, evs)
	}
	path := "/apps/" + a.AppID + "/events"
	var body []byte
	if len(evs) == 1 {
		body, _ = json.Marshal(evs[0])
	} else {
		path = "/apps/" + a.AppID + "/batch_events"
		body, _ = json.Marshal(struct {
			Batch []Event `json:"batch"`
		}{evs})
	}
	q := signing.SignRequest(http.MethodPost, path, nil, body, a.Key, a.Secret, time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Base+path+"?"+q, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp.StatusCode, nil
}

func (a *API) publishCentrifugo(ctx context.Context, evs []Event) (int, error) {
	if len(evs) != 1 {
		return 0, fmt.Errorf("centrifugo: %d events in one request, only 1 is sent", len(evs))
	}
	body, err := json.Marshal(struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}{evs[0].Channel, json.RawMessage(evs[0].Data)})
	if err != nil {
		return 0, fmt.Errorf("encoding the publication: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Base+"/api/publish", bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", a.CentrifugoKey)
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST /api/publish: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || bytes.Contains(msg, []byte(`"error"`)) {
		return resp.StatusCode, fmt.Errorf("POST /api/publish: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp.StatusCode, nil
}

// Plan is a run of events: Rate events a second for Duration, in requests
// of Batch events each. Request r goes to channel r mod len(Channels) and
// carries that channel's next Batch sequence numbers.
type Plan struct {
	Rate     float64
	Duration time.Duration
	Channels []string
	Batch    int // events per request, 1 to 10, all on one channel
	Size     int // bytes of each event's data
	// Senders is how many requests may be in flight at once. With 1, every
	// request waits for the previous answer, as one queue worker would.
	Senders int
	// Late is how far behind schedule the run may fall before it stops
	// sending: a server that cannot keep up ends the run instead of
	// stretching it without bound.
	Late time.Duration
}

// Result is what the trigger side saw.
type Result struct {
	Planned   uint64 `json:"planned"`
	Accepted  uint64 `json:"accepted"`         // events in requests answered 200
	Failed    uint64 `json:"failed"`           // events in requests that failed
	Unsent    uint64 `json:"unsent"`           // dropped for being too late
	Requests  uint64 `json:"requests"`         // HTTP requests made
	HTTPError uint64 `json:"http_errors"`      // answered, not 200
	Transport uint64 `json:"transport_errors"` // no answer
	LastError string `json:"last_error,omitempty"`
	// Latency is the round trip of each request.
	Latency stats.Summary `json:"request_latency"`
	// MaxLag is the furthest a request started behind its schedule.
	MaxLag time.Duration `json:"max_lag_ns"`
	Start  time.Time     `json:"-"`
	// Drain is how the wait for outstanding messages ended: "complete"
	// (all arrived), "quiet" (nothing arrived for 3 s) or "timeout" (still
	// arriving when -drain ran out: missing messages may be late, not lost).
	Drain string `json:"drain,omitempty"`
	// Channels is each channel's ledger.
	Channels []*stats.Channel `json:"-"`
}

// request is one planned request.
type request struct {
	ch  int
	seq uint64 // first sequence number
	n   uint64
	due time.Time
}

// Run sends the plan and returns when every request has been answered.
func (a *API) Run(ctx context.Context, p Plan) Result {
	nch := len(p.Channels)
	total := uint64(p.Rate * p.Duration.Seconds())
	batch := uint64(max(1, p.Batch))
	nreq := (total + batch - 1) / batch
	res := Result{Planned: total, Channels: make([]*stats.Channel, nch)}
	perChannel := (nreq+uint64(nch)-1)/uint64(nch)*batch + 1
	for c := range res.Channels {
		res.Channels[c] = &stats.Channel{AckedAt: make([]int64, perChannel)}
	}
	var (
		mu     sync.Mutex
		lat    stats.Histogram
		maxLag atomic.Int64
		wg     sync.WaitGroup
		queue  = make(chan request)
	)
	for range max(1, p.Senders) {
		wg.Go(func() {
			for r := range queue {
				a.send(ctx, p, r, &res, &mu, &lat, &maxLag)
			}
		})
	}
	start := time.Now()
	res.Start = start
	perRequest := time.Duration(float64(batch) * float64(time.Second) / p.Rate)
	for r := range nreq {
		req := request{
			ch:  int(r % uint64(nch)),
			seq: r / uint64(nch) * batch,
			n:   min(batch, total-r*batch),
			due: start.Add(time.Duration(r) * perRequest),
		}
		if d := time.Until(req.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		// Waits for a free sender, up to the lateness bound.
		late := time.NewTimer(time.Until(req.due.Add(p.Late)))
		select {
		case queue <- req:
			late.Stop()
			continue
		case <-ctx.Done():
		case <-late.C:
		}
		mu.Lock()
		res.Unsent += total - r*batch
		mu.Unlock()
		break
	}
	close(queue)
	wg.Wait()
	res.Latency = lat.Summary()
	res.MaxLag = time.Duration(maxLag.Load())
	return res
}

func (a *API) send(ctx context.Context, p Plan, r request, res *Result, mu *sync.Mutex, lat *stats.Histogram, maxLag *atomic.Int64) {
	now := time.Now()
	stats.StoreMax(maxLag, int64(now.Sub(r.due)))
	evs := make([]Event, r.n)
	sentAt := now.UnixNano()
	for k := range evs {
		e := payload.Event{Seq: r.seq + uint64(k), Channel: uint64(r.ch), SentAt: sentAt}
		evs[k] = Event{Name: payload.EventName, Channel: p.Channels[r.ch], Data: e.Data(p.Size)}
	}
	status, err := a.Publish(ctx, evs)
	acked := time.Now()
	lat.Record(acked.Sub(now))
	mu.Lock()
	defer mu.Unlock()
	res.Requests++
	switch {
	case err == nil:
		res.Accepted += r.n
		for k := range r.n {
			res.Channels[r.ch].Ack(r.seq+k, acked.UnixNano())
		}
	case status != 0:
		res.HTTPError++
		res.Failed += r.n
		res.LastError = err.Error()
	default:
		res.Transport++
		res.Failed += r.n
		res.LastError = err.Error()
	}
}
