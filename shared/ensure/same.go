package ensure

import (
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// SameStream reports whether have, as the server reports it, already is what
// want declares, in the fields Herald declares. The server writes unset
// limits as -1 and fills in defaults for what want leaves at zero.
func SameStream(have, want jetstream.StreamConfig) bool {
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
		have.AllowMsgTTL == want.AllowMsgTTL &&
		have.AllowBatchPublish == want.AllowBatchPublish &&
		have.SubjectDeleteMarkerTTL == want.SubjectDeleteMarkerTTL &&
		sameRepublish
}

// SameBucket is SameStream for a key-value bucket, as KeyValueStatus.Config
// reports it.
func SameBucket(have, want jetstream.KeyValueConfig) bool {
	return have.Description == want.Description &&
		int64(have.History) == int64(max(want.History, 1)) &&
		have.TTL == want.TTL &&
		have.MaxBytes == limit(want.MaxBytes) &&
		int64(have.MaxValueSize) == limit(int64(want.MaxValueSize)) &&
		have.Storage == want.Storage &&
		have.Replicas == max(want.Replicas, 1) &&
		have.Compression == want.Compression &&
		have.LimitMarkerTTL == want.LimitMarkerTTL
}

func limit(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}
