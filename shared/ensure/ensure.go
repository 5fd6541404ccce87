// Package ensure makes a JetStream stream or key-value bucket match the
// configuration the code declares for it, the one way every service does so.
//
// The rule: read what exists; create it when missing; update it only when
// it differs from the declared configuration (never when it is the same, so
// that services starting together do not fight over it and a cold start
// rewrites nothing); and while NATS cannot answer yet, or another service
// creates the same thing at the same moment, try again with backoff until
// the context ends, logging what is being waited for.
package ensure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Retry timing. An attempt is bounded on its own: on a JetStream cluster, a
// create or update of a replicated stream racing another one for the same
// name can go unanswered, and only a fresh request settles it.
const (
	attemptTimeout = 2 * time.Second
	firstBackoff   = 100 * time.Millisecond
	maxBackoff     = 2 * time.Second
	// logEvery spaces the "still waiting" lines of one wait.
	logEvery = 10 * time.Second
)

// Stream creates the stream cfg declares, or updates it when what exists
// differs. It retries until ctx ends.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := retry(ctx, "stream "+cfg.Name, func(ctx context.Context) error {
		var err error
		s, err = streamOnce(ctx, js, cfg, true)
		return err
	})
	return s, err
}

// OpenStream returns the stream cfg declares, creating it when it does not
// exist, but never updates an existing one: for the services that use a
// stream another service owns. It retries until ctx ends.
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := retry(ctx, "stream "+cfg.Name, func(ctx context.Context) error {
		var err error
		s, err = streamOnce(ctx, js, cfg, false)
		return err
	})
	return s, err
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
	var kv jetstream.KeyValue
	err := retry(ctx, "bucket "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = bucketOnce(ctx, js, cfg, true)
		return err
	})
	return kv, err
}

// OpenBucket is OpenStream for a key-value bucket.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retry(ctx, "bucket "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = bucketOnce(ctx, js, cfg, false)
		return err
	})
	return kv, err
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

// retry runs attempt, each bounded by attemptTimeout, until it succeeds, the
// error is permanent, or ctx ends.
func retry(ctx context.Context, what string, attempt func(context.Context) error) error {
	backoff := firstBackoff
	var lastLog time.Time
	start := time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := attempt(actx)
		cancel()
		if err == nil {
			if !lastLog.IsZero() {
				slog.Info("ensured after waiting", "what", what, "waited", time.Since(start).Round(time.Millisecond).String())
			}
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && permanent[apiErr.ErrorCode] {
			return fmt.Errorf("ensuring %s: %w", what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ensuring %s: %w (last error: %v)", what, ctx.Err(), err)
		}
		if time.Since(lastLog) >= logEvery {
			slog.Warn("waiting for JetStream", "what", what, "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensuring %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
