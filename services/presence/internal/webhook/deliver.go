package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/backoff"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/option"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/herald-ws/herald/shared/webhooks"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of delivery.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultRetryFor = 5 * time.Minute
	DefaultBackoff  = time.Second
	// maxBackoff caps the wait between two attempts.
	maxBackoff = time.Minute
	// ackWait is how long a fetched batch stays with this deliverer without
	// a sign of progress; it is renewed while the batch is retried.
	ackWait = 30 * time.Second
	// fetchSize bounds the batches one endpoint holds at a time.
	fetchSize = 32
	// probeEvery is how often a lane in backoff looks for batches queued
	// since its last attempt: a new one makes it try the endpoint again at
	// once, so that delivery resumes within about this long of the endpoint
	// answering again, whatever the backoff reached while it was down.
	probeEvery = time.Second
)

// Options configure a Deliverer. Zero durations take the defaults.
type Options struct {
	Stream jetstream.Stream
	Apps   *appconf.Registry
	Logger *slog.Logger
	// Client sends the POSTs; nil means a client of its own.
	Client *http.Client
	// Timeout bounds one POST.
	Timeout time.Duration
	// RetryFor is how long after it was queued a batch is still retried.
	RetryFor time.Duration
	// Backoff is the first wait after a failed attempt; it doubles up to a
	// minute.
	Backoff time.Duration
	// Result, when set, counts each attempt by outcome: "ok", "failed",
	// "dropped".
	Result func(outcome string)
}

// Deliver consumes the queue of every endpoint of every app in its own
// goroutine, so that a slow or dead endpoint holds up none but itself, until
// ctx ends. Only one deliverer may run at a time (the active presence
// instance): it recreates the consumers, so that batches that a previous
// instance left unacknowledged are delivered at once.
func Deliver(ctx context.Context, opt Options) error {
	option.Default(&opt.Timeout, DefaultTimeout)
	option.Default(&opt.RetryFor, DefaultRetryFor)
	option.Default(&opt.Backoff, DefaultBackoff)
	if opt.Client == nil {
		opt.Client = &http.Client{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Result == nil {
		opt.Result = func(string) {}
	}
	var lanes []*lane
	for _, app := range opt.Apps.All() {
		for _, w := range webhooks.Endpoints(app.Webhooks) {
			var cons jetstream.Consumer
			for {
				var err error
				if cons, err = consumer(ctx, opt.Stream, app.ID, w.URL); err == nil {
					break
				}
				opt.Logger.Warn("preparing webhook delivery", "app_id", app.ID, "err", err)
				if !backoff.Sleep(ctx, time.Second) {
					return nil
				}
			}
			lanes = append(lanes, &lane{opt: &opt, app: app, url: w.URL, cons: cons,
				log: opt.Logger.With("app_id", app.ID, "url", redact(w.URL))})
		}
	}
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Go(func() { l.run(ctx) })
	}
	wg.Wait()
	return nil
}

func consumer(ctx context.Context, st jetstream.Stream, appID, url string) (jetstream.Consumer, error) {
	name := names.WebhookConsumerPrefix + webhooks.Digest(appID, url)
	if err := st.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("resetting the webhook consumer of %s: %w", url, err)
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Herald webhooks of app " + appID + " to " + url,
		FilterSubject: names.WebhookSubject(appID, url),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: fetchSize,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the webhook consumer of %s: %w", url, err)
	}
	return cons, nil
}

// lane delivers the batches of one endpoint, one at a time in queue order.
type lane struct {
	opt  *Options
	app  *appconf.App
	url  string
	cons jetstream.Consumer
	log  *slog.Logger
	// held are fetched batches not yet delivered; touched is when their
	// ack wait was last renewed.
	held    []jetstream.Msg
	touched time.Time
}

func (l *lane) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := l.fetch(ctx); err != nil {
			if ctx.Err() == nil {
				l.log.Warn("fetching webhooks", "err", err)
				backoff.Sleep(ctx, time.Second)
			}
			continue
		}
		l.touched = time.Now()
		for len(l.held) > 0 && ctx.Err() == nil {
			m := l.held[0]
			l.held = l.held[1:]
			l.deliver(ctx, m)
		}
		// Batches left held when ctx ended go to the next deliverer.
		l.held = nil
	}
}

// fetch takes what is queued, or waits a few seconds for one batch.
func (l *lane) fetch(ctx context.Context) error {
	b, err := l.cons.FetchNoWait(fetchSize)
	if err != nil {
		return err
	}
	for m := range b.Messages() {
		l.held = append(l.held, m)
	}
	if len(l.held) > 0 {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := l.cons.Next(jetstream.FetchContext(fctx))
	switch {
	case errors.Is(err, jetstream.ErrNoMessages), errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return nil
	case err != nil:
		return err
	}
	l.held = append(l.held, m)
	return nil
}

// deliver POSTs one batch until an endpoint answers 2xx or the batch is
// RetryFor old: the last attempt is made at that age, not before, so that a
// batch is dropped only once its retry period is over.
func (l *lane) deliver(ctx context.Context, m jetstream.Msg) {
	queued := time.Now()
	if md, err := m.Metadata(); err == nil {
		queued = md.Timestamp
	}
	id := m.Headers().Get(names.HeaderWebhookID)
	waits := backoff.Doubling{First: l.opt.Backoff, Max: maxBackoff}
	for try := 0; ; try++ {
		err := l.post(ctx, m.Data(), id)
		if err == nil {
			_ = m.Ack()
			l.opt.Result("ok")
			return
		}
		if ctx.Err() != nil {
			return
		}
		l.opt.Result("failed")
		age := time.Since(queued)
		if age >= l.opt.RetryFor {
			l.log.Warn("webhook dropped after retrying", "webhook_id", id, "err", err)
			l.opt.Result("dropped")
			_ = m.Term()
			return
		}
		d := min(waits.Wait(try), l.opt.RetryFor-age)
		l.log.Debug("webhook failed, retrying", "webhook_id", id, "err", err, "in", d)
		if !l.pause(ctx, m, d) {
			return
		}
	}
}

// pause waits d while renewing the ack wait of the batch being retried and
// of those held behind it. It ends early when a batch was queued for the
// endpoint since the pause began (see probeEvery): the backlog of an outage
// must not hold fresh webhooks for the whole backoff once the endpoint is
// back. It reports false when ctx ended.
func (l *lane) pause(ctx context.Context, m jetstream.Msg, d time.Duration) bool {
	end := time.Now().Add(d)
	queued, known := l.waiting(ctx)
	for {
		if time.Since(l.touched) > ackWait/3 {
			l.touched = time.Now()
			_ = m.InProgress()
			for _, h := range l.held {
				_ = h.InProgress()
			}
		}
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		if !backoff.Sleep(ctx, min(left, probeEvery, ackWait/3)) {
			return false
		}
		if now, ok := l.waiting(ctx); ok && known && now > queued {
			return true
		}
	}
}

// waiting returns how many batches of the endpoint are queued and not yet
// fetched (ok false when the server could not say).
func (l *lane) waiting(ctx context.Context) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, l.opt.Timeout)
	defer cancel()
	info, err := l.cons.Info(ctx)
	if err != nil {
		return 0, false
	}
	return info.NumPending, true
}

func (l *lane) post(ctx context.Context, body []byte, id string) error {
	ctx, cancel := context.WithTimeout(ctx, l.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", l.app.Key)
	req.Header.Set("X-Pusher-Signature", signing.Webhook(l.app.Secret, body))
	if id != "" {
		req.Header.Set(names.HeaderWebhookID, id)
	}
	resp, err := l.opt.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return nil
}

// redact drops what may hold a credential from a URL before it is logged.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
