// Package ensure makes a JetStream stream or key-value bucket match the
// configuration the code declares for it, the one way every service does so.
//
// The rule: read what exists; create it when missing; update it only when
// it differs from the declared configuration (never when it is the same, so
// that services starting together do not fight over it and a cold start
// rewrites nothing); and while NATS cannot answer yet, or another service
// creates the same thing at the same moment, try again with backoff until
// the context ends, logging what is being waited for.
//
// Wait is the same retry for any other start-up step that talks to NATS
// (a bucket's first write, a consumer, a subscription's flush): a service
// starting beside a fresh cluster waits for it instead of exiting.
package ensure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/herald-ws/herald/shared/backoff"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Retry timing. An attempt is bounded on its own: on a JetStream cluster, a
// create or update of a replicated stream racing another one for the same
// name can go unanswered, and only a fresh request settles it.
const (
	attemptTimeout = 2 * time.Second
	// logEvery spaces the "still waiting" lines of one wait.
	logEvery = 10 * time.Second
)

// Backoff is the wait between tries while NATS cannot answer: Wait's, and
// a process's between two attempts to reach NATS.
var Backoff = backoff.Doubling{First: 100 * time.Millisecond, Max: 2 * time.Second}

// Stream creates the stream cfg declares, or updates it when what exists
// differs. It retries until ctx ends.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return waitFor(ctx, "ensuring stream "+cfg.Name, func(ctx context.Context) (jetstream.Stream, error) {
		return streamOnce(ctx, js, cfg, true)
	})
}

// OpenStream returns the stream cfg declares, creating it when it does not
// exist, but never updates an existing one: for the services that use a
// stream another service owns. It retries until ctx ends.
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return waitFor(ctx, "ensuring stream "+cfg.Name, func(ctx context.Context) (jetstream.Stream, error) {
		return streamOnce(ctx, js, cfg, false)
	})
}

func streamOnce(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, update bool) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return js.CreateStream(ctx, cfg)
	case err != nil:
		return nil, err
	case !update || SameStream(s.CachedInfo().Config, cfg):
		return s, nil
	}
	slog.Info("updating stream to its declared configuration", "stream", cfg.Name)
	return js.UpdateStream(ctx, cfg)
}

// Bucket creates the key-value bucket cfg declares, or updates it when what
// exists differs. It retries until ctx ends.
func Bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return waitFor(ctx, "ensuring bucket "+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return bucketOnce(ctx, js, cfg, true)
	})
}

// OpenBucket is OpenStream for a key-value bucket.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return waitFor(ctx, "ensuring bucket "+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return bucketOnce(ctx, js, cfg, false)
	})
}

func bucketOnce(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, update bool) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return js.CreateKeyValue(ctx, cfg)
	case err != nil:
		return nil, err
	case !update:
		return kv, nil
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if SameBucket(st.Config(), cfg) {
		return kv, nil
	}
	slog.Info("updating bucket to its declared configuration", "bucket", cfg.Bucket)
	return js.UpdateKeyValue(ctx, cfg)
}

// permanent are the JetStream errors that no retry can cure: the declared
// configuration itself is refused.
var permanent = map[jetstream.ErrorCode]bool{
	10052: true, // invalid stream configuration
	10065: true, // subjects overlap with another stream
	10074: true, // replicas > 1 on a server that is not clustered
	10133: true, // negative replicas
}

// Permanent marks err as one that no retry can cure: Wait returns it at
// once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// isPermanent: marked so, a configuration JetStream refuses, or a
// connection closed for good.
func isPermanent(err error) bool {
	var apiErr *jetstream.APIError
	var p permanentError
	return errors.As(err, &p) || (errors.As(err, &apiErr) && permanent[apiErr.ErrorCode]) ||
		errors.Is(err, nats.ErrConnectionClosed)
}

// Wait runs attempt, each try bounded by its own timeout, until it
// succeeds, its error is permanent, or ctx ends; what names what is being
// waited for in the log and the error. Transient errors (NATS not
// connected, JetStream without a leader yet, no response from a stream
// electing one) are retried with backoff.
func Wait(ctx context.Context, what string, attempt func(context.Context) error) error {
	var lastLog time.Time
	start := time.Now()
	for try := 0; ; try++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := attempt(actx)
		cancel()
		if err == nil {
			if !lastLog.IsZero() {
				slog.Info("done after waiting", "what", what, "waited", time.Since(start).Round(time.Millisecond).String())
			}
			return nil
		}
		if isPermanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		}
		if time.Since(lastLog) >= logEvery {
			slog.Warn("waiting for NATS", "what", what, "err", err)
			lastLog = time.Now()
		}
		if !backoff.Sleep(ctx, Backoff.Wait(try)) {
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		}
	}
}

// waitFor is Wait for an attempt that returns what it opened.
func waitFor[T any](ctx context.Context, what string, attempt func(context.Context) (T, error)) (T, error) {
	var v T
	err := Wait(ctx, what, func(ctx context.Context) error {
		var err error
		v, err = attempt(ctx)
		return err
	})
	return v, err
}
