package presence

import (
	"time"

	"github.com/herald-ws/herald/shared/names"
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
	// MarkerTTL is how long a TTL expiry marker, or a purge marker of the
	// state bucket, stays in a bucket: watchers see it at once, so it only
	// has to outlive a reconnect.
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
	return ttlBucketConfig(names.GatewaysBucket, "Herald gateway heartbeats", o)
}

// StateBucketConfig is PresenceStateBucket. One writer, so no history.
// The writer removes a key with a purge marker that expires after
// MarkerTTL (Nats-TTL): without it, every channel ever occupied and every
// user ever signed in would leave a marker behind for good. LimitMarkerTTL
// is what lets messages carry a TTL; no key of this bucket expires by a
// limit, so the server never writes a marker of its own here and the
// stream's last sequence (the writer's fence) moves only with its writes.
func StateBucketConfig(o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         names.PresenceStateBucket,
		Description:    "Herald global channel state",
		Storage:        jetstream.FileStorage,
		Replicas:       o.replicas(),
		MaxValueSize:   MaxMsgBytes,
		LimitMarkerTTL: MarkerTTL,
	}
}

// LockBucketConfig is PresenceLockBucket; the lock key carries its own TTL.
func LockBucketConfig(o Options) jetstream.KeyValueConfig {
	return ttlBucketConfig(names.PresenceLockBucket, "Herald presence service lock", o)
}

// ttlBucketConfig is a bucket whose writers set a TTL on each key, with the
// limit marker that makes an expiry visible to watchers.
func ttlBucketConfig(bucket, description string, o Options) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         bucket,
		Description:    description,
		Storage:        jetstream.FileStorage,
		Replicas:       o.replicas(),
		LimitMarkerTTL: MarkerTTL,
	}
}
