package presence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options are the installation-wide settings of the presence streams and
// buckets. Every service builds the same configuration from them, so that
// whichever starts first creates what the others expect.
type Options struct {
	// Replicas is 1 on a single NATS server, 3 on a cluster.
	Replicas int
}

func (o Options) replicas() int {
	if o.Replicas <= 0 {
		return 1
	}
	return o.Replicas
}

// Fixed settings of the contract.
const (
	// DuplicateWindow is how long Nats-Msg-Id deduplicates operations and
	// member events: longer than a restart or a failover of the presence
	// service, so that re-applied operations emit no event twice.
	DuplicateWindow = 5 * time.Minute
	// MarkerTTL is how long a TTL expiry marker stays in a bucket: watchers
	// see it at once, so it only has to outlive a reconnect.
	MarkerTTL = time.Minute
	// MemberEventsMaxAge bounds how long a channel's last member event is
	// kept. Gateways check continuity with Nats-Last-Sequence, which is 0
	// once the previous event aged out.
	MemberEventsMaxAge = time.Hour
	// OpsMaxBytes caps PresenceOpsStream while no presence service consumes
	// it; the service asks every gateway for a snapshot when it finds that
	// operations were dropped.
	OpsMaxBytes = 1 << 30
	// MaxMsgBytes bounds one operation or snapshot part.
	MaxMsgBytes = 1 << 20
)

// OpsStreamConfig is PresenceOpsStream: a work queue, so that an operation
// stays until the presence service has applied and persisted it.
func OpsStreamConfig(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        names.PresenceOpsStream,
		Description: "Herald subscription operations from gateways, applied by the presence service",
		Subjects:    []string{names.PresenceOpsSubjects()},
		Retention:   jetstream.WorkQueuePolicy,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    OpsMaxBytes,
		MaxMsgSize:  MaxMsgBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    o.replicas(),
		Duplicates:  DuplicateWindow,
	}
}

// MembersStreamConfig is MembersStream: the last member event of each
// channel (its sequence is what the next event's Nats-Last-Sequence names)
// and the deduplication of re-emitted events, republished to the live
// member subjects.
func MembersStreamConfig(o Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              names.MembersStream,
		Description:       "Herald presence member events",
		Subjects:          []string{names.MemberEventsSubjects()},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxAge:            MemberEventsMaxAge,
		MaxMsgSize:        MaxMsgBytes,
		Storage:           jetstream.FileStorage,
		Replicas:          o.replicas(),
		Duplicates:        DuplicateWindow,
		RePublish: &jetstream.RePublish{
			Source:      names.MemberEventsSubjects(),
			Destination: names.MemberLiveRepublishDestination(),
		},
	}
}

// GatewaysBucketConfig is GatewaysBucket. Each gateway sets its own key TTL
// on every put; the limit marker makes an expiry visible to watchers.
func GatewaysBucketConfig(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         names.GatewaysBucket,
		Description:    "Herald gateway heartbeats",
		Storage:        jetstream.FileStorage,
		Replicas:       o.replicas(),
		LimitMarkerTTL: MarkerTTL,
	}
}

// StateBucketConfig is PresenceStateBucket. One writer, so no history.
func StateBucketConfig(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       names.PresenceStateBucket,
		Description:  "Herald global channel state",
		Storage:      jetstream.FileStorage,
		Replicas:     o.replicas(),
		MaxValueSize: MaxMsgBytes,
	}
}

// LockBucketConfig is PresenceLockBucket; the lock key carries its own TTL.
func LockBucketConfig(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         names.PresenceLockBucket,
		Description:    "Herald presence service lock",
		Storage:        jetstream.FileStorage,
		Replicas:       o.replicas(),
		LimitMarkerTTL: MarkerTTL,
	}
}

// EnsureStream creates or updates a stream of the contract.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	// An update that changes nothing is skipped: besides a needless
	// proposal, an update racing a consumer being created on the same
	// stream trips a data race inside nats-server 2.15.
	if s, err := js.Stream(ctx, cfg.Name); err == nil && sameStreamConfig(s.CachedInfo().Config, cfg) {
		return s, nil
	}
	var s jetstream.Stream
	err := retry(ctx, func() error {
		var err error
		s, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensuring stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// EnsureBucket creates or updates a bucket of the contract.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retry(ctx, func() error {
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// OpenStream returns a stream of the contract, creating it when it does not
// exist yet. Unlike EnsureStream it never updates an existing one: that is
// left to the presence service, which owns the configuration, so that
// gateways and readers starting beside it do not update a stream while the
// service creates a consumer on it (a race inside nats-server 2.15).
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("opening stream %s: %w", cfg.Name, err)
	}
	return EnsureStream(ctx, js, cfg)
}

// OpenBucket is OpenStream for a bucket of the contract.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("opening bucket %s: %w", cfg.Bucket, err)
	}
	return EnsureBucket(ctx, js, cfg)
}

// retry repeats f while two services creating the same thing at once
// collide, or while JetStream is still starting.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 6; attempt++ {
		if err = f(); err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && !errors.Is(err, nats.ErrTimeout) &&
			!errors.Is(err, jetstream.ErrJetStreamNotEnabled) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}

// sameStreamConfig reports whether have, as the server reports it, already is
// what want asks for, in the fields the contract sets. The server writes
// unset limits as -1.
func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	limit := func(v int64) int64 {
		if v == 0 {
			return -1
		}
		return v
	}
	sameRepublish := (have.RePublish == nil) == (want.RePublish == nil) &&
		(want.RePublish == nil || *have.RePublish == *want.RePublish)
	return have.Description == want.Description &&
		slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention &&
		have.Discard == want.Discard &&
		have.MaxBytes == limit(want.MaxBytes) &&
		have.MaxMsgs == limit(want.MaxMsgs) &&
		have.MaxMsgsPerSubject == limit(want.MaxMsgsPerSubject) &&
		int64(have.MaxMsgSize) == limit(int64(want.MaxMsgSize)) &&
		have.MaxAge == want.MaxAge &&
		have.Storage == want.Storage &&
		have.Replicas == max(want.Replicas, 1) &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.AllowDirect == want.AllowDirect &&
		sameRepublish
}
