// Package service is Herald's presence service: the single writer of global
// channel state. It applies the subscription operations that gateways
// publish, keeps who is subscribed where and who is a member of each presence
// channel, emits member_added and member_removed on a user's first and last
// connection anywhere, publishes throttled subscription counts, removes the
// subscriptions of gateways whose heartbeat ended, and persists the state so
// that the trigger API answers channel queries and a restarted or standby
// instance carries on. It also queues the apps' webhooks (channel_occupied,
// channel_vacated, member_added, member_removed) and delivers them
// (internal/webhook). shared/presence documents the protocol.
//
// Several instances may run: one is active (it holds the lock), the others
// wait to take over.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/lease"
	"github.com/herald-ws/herald/services/presence/internal/webhook"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/process"
	"github.com/herald-ws/herald/shared/webhooks"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure the service. Zero durations take the defaults below.
type Options struct {
	// NC is the NATS connection; the caller owns it (drains and closes it).
	NC *nats.Conn
	// Apps gives each app's member limit and whether it wants
	// subscription counts; nil applies the defaults to every app.
	Apps   *appconf.Registry
	Logger *slog.Logger
	// Metrics receives the herald_presence_* collectors; nil keeps them
	// unregistered.
	Metrics prometheus.Registerer
	Infra   presence.Options

	// Instance names this instance in the lock and the meta record;
	// empty means a random one.
	Instance string
	// DrainGrace holds member_removed for the users of a draining gateway
	// (default 10 s), so that a rolling restart does not flap presence.
	DrainGrace time.Duration
	// LockTTL is how long the lock outlives an active instance that
	// stopped renewing it: a standby takes over within it (default 10 s).
	LockTTL time.Duration
	// FlushInterval coalesces state writes (default 50 ms): operations are
	// acknowledged once the state they produced is written.
	FlushInterval time.Duration
	// CountInterval is the shortest time between two subscription counts
	// of one channel (default 1 s).
	CountInterval time.Duration
	// ReconcileInterval is how often gateways are checked against their
	// heartbeats, besides the expiry markers (default 5 s).
	ReconcileInterval time.Duration

	// OnOccupancy, when set, is called by the active instance when a
	// channel becomes occupied or vacated anywhere, after the change is
	// persisted. It runs on the service's goroutine: it must not block.
	// An instance that takes over after a crash may repeat a change.
	OnOccupancy func(Occupancy)

	// Webhooks of the apps in Apps are queued in a JetStream work queue
	// and delivered by the active instance. WebhookTimeout bounds one POST
	// (default 5 s); WebhookRetryFor is how long a batch is retried after
	// it was queued (default 5 min); WebhookBackoff is the first wait
	// between attempts, doubling up to a minute (default 1 s).
	WebhookTimeout  time.Duration
	WebhookRetryFor time.Duration
	WebhookBackoff  time.Duration
}

// Occupancy is a channel's change between occupied and vacated.
type Occupancy struct {
	AppID    string
	Channel  string
	Occupied bool
	At       time.Time
}

// Defaults.
const (
	DefaultDrainGrace        = 10 * time.Second
	DefaultLockTTL           = 10 * time.Second
	DefaultFlushInterval     = 50 * time.Millisecond
	DefaultCountInterval     = time.Second
	DefaultReconcileInterval = 5 * time.Second
)

// Service is one presence instance.
type Service struct {
	opt     Options
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics
	active  atomic.Bool
	running atomic.Bool
	ensured atomic.Bool // Run ensured the streams and buckets
}

// New checks the options and builds the service; Run starts it.
func New(opt Options) (*Service, error) {
	if opt.NC == nil {
		return nil, errors.New("presence: no NATS connection")
	}
	setDefault(&opt.DrainGrace, DefaultDrainGrace)
	setDefault(&opt.LockTTL, DefaultLockTTL)
	setDefault(&opt.FlushInterval, DefaultFlushInterval)
	setDefault(&opt.CountInterval, DefaultCountInterval)
	setDefault(&opt.ReconcileInterval, DefaultReconcileInterval)
	setDefault(&opt.WebhookTimeout, webhook.DefaultTimeout)
	setDefault(&opt.WebhookRetryFor, webhook.DefaultRetryFor)
	setDefault(&opt.WebhookBackoff, webhook.DefaultBackoff)
	if opt.WebhookTimeout < 0 || opt.WebhookRetryFor < 0 || opt.WebhookBackoff < 0 {
		return nil, errors.New("presence: negative webhook timeout, retry period or backoff")
	}
	if opt.LockTTL < time.Second {
		return nil, fmt.Errorf("presence: lock TTL %s is below the 1 s that JetStream allows", opt.LockTTL)
	}
	if opt.DrainGrace < 0 {
		return nil, fmt.Errorf("presence: negative drain grace %s", opt.DrainGrace)
	}
	if opt.Instance == "" {
		opt.Instance = "presence-" + appconf.RandomHex(6)
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(opt.NC)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	m, err := newMetrics(opt.Metrics)
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	return &Service{opt: opt, nc: opt.NC, js: js, log: opt.Logger.With("instance", opt.Instance), metrics: m}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

// Instance returns the instance name.
func (s *Service) Instance() string { return s.opt.Instance }

// Ready is nil once Run ensured the streams and buckets.
func (s *Service) Ready() error {
	if !s.ensured.Load() {
		return errors.New("presence streams and buckets not ensured yet")
	}
	return nil
}

// Active reports whether this instance holds the lock and applies
// operations.
func (s *Service) Active() bool { return s.active.Load() }

// Run ensures the streams and buckets, then takes turns: wait for the lock,
// apply operations while holding it, and start over if the term fails. It
// returns nil when ctx ends, after handing the lock over.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("presence: Run called twice")
	}
	infra, err := s.ensure(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.ensured.Store(true)
	poll := min(max(s.opt.LockTTL/10, 100*time.Millisecond), time.Second)
	for {
		l, err := lease.Acquire(ctx, s.js, infra.lock, names.PresenceLeaderKey,
			presence.Lock{Instance: s.opt.Instance, Since: time.Now()}, s.opt.LockTTL, poll)
		if err != nil {
			return nil // ctx ended
		}
		s.log.Info("presence active")
		s.active.Store(true)
		s.metrics.active.Set(1)
		s.metrics.terms.Inc()
		err = s.runTerm(ctx, l, infra)
		s.active.Store(false)
		s.metrics.active.Set(0)

		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if rerr := l.Release(rctx); rerr != nil && !errors.Is(err, lease.ErrLost) {
			s.log.Warn("releasing the presence lock", "err", rerr)
		}
		cancel()
		if ctx.Err() != nil {
			s.log.Info("presence stopped")
			return nil
		}
		s.log.Warn("presence term ended, starting over", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// infra holds the streams and buckets of the contract.
type infra struct {
	ops, members, hooks   jetstream.Stream
	gateways, state, lock jetstream.KeyValue
}

// ensure creates or updates every stream and bucket, each waiting while
// NATS is not ready, until ctx ends; a configuration JetStream refuses is an
// error.
func (s *Service) ensure(ctx context.Context) (*infra, error) {
	o := s.opt.Infra
	var in infra
	var err error
	if in.ops, err = ensure.Stream(ctx, s.js, presence.OpsStreamConfig(o)); err != nil {
		return nil, err
	}
	if in.members, err = ensure.Stream(ctx, s.js, presence.MembersStreamConfig(o)); err != nil {
		return nil, err
	}
	if in.hooks, err = ensure.Stream(ctx, s.js, webhook.StreamConfig(o)); err != nil {
		return nil, err
	}
	if in.gateways, err = ensure.Bucket(ctx, s.js, presence.GatewaysBucketConfig(o)); err != nil {
		return nil, err
	}
	if in.state, err = ensure.Bucket(ctx, s.js, presence.StateBucketConfig(o)); err != nil {
		return nil, err
	}
	if in.lock, err = ensure.Bucket(ctx, s.js, presence.LockBucketConfig(o)); err != nil {
		return nil, err
	}
	return &in, nil
}

// Handler serves GET /up: 200 while NATS is connected, with the role of
// this instance; 503 otherwise.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			process.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		role := "standby"
		if s.Active() {
			role = "active"
		}
		code, status := http.StatusOK, "ok"
		if !s.nc.IsConnected() {
			code, status = http.StatusServiceUnavailable, "nats disconnected"
		}
		process.WriteJSON(w, code, map[string]string{"status": status, "role": role, "instance": s.opt.Instance})
	})
}

// maxMembers is an app's presence member limit.
func (s *Service) maxMembers(appID string) int {
	if s.opt.Apps != nil {
		if a, ok := s.opt.Apps.ByID(appID); ok {
			return a.MaxPresenceMembers
		}
	}
	return appconf.Defaults().MaxPresenceMembers
}

// webhookApp returns an app with an endpoint that takes webhook event name.
func (s *Service) webhookApp(appID, name string) (*appconf.App, bool) {
	if s.opt.Apps == nil {
		return nil, false
	}
	a, ok := s.opt.Apps.ByID(appID)
	if !ok || !a.WantsWebhook(name) {
		return nil, false
	}
	return a, true
}

// hasWebhooks reports whether any app has an endpoint.
func (s *Service) hasWebhooks() bool {
	if s.opt.Apps == nil {
		return false
	}
	for _, a := range s.opt.Apps.All() {
		if len(a.Webhooks) > 0 {
			return true
		}
	}
	return false
}

// wantsCounts reports whether an app's gateways relay subscription counts.
// An app this instance does not know gets them: a gateway that does not want
// them does not listen.
func (s *Service) wantsCounts(appID string) bool {
	if s.opt.Apps != nil {
		if a, ok := s.opt.Apps.ByID(appID); ok {
			return a.SubscriptionCount
		}
	}
	return true
}

// wantsCountHooks reports whether an app has an endpoint that takes
// subscription_count webhooks.
func (s *Service) wantsCountHooks(appID string) bool {
	_, ok := s.webhookApp(appID, webhooks.SubscriptionCount)
	return ok
}
