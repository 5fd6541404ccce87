package events

import (
	"context"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CacheTTL is how long a cache channel's last event stays available to new
// subscribers, whatever the app's replay window: Pusher's 30 minutes.
const CacheTTL = 30 * time.Minute

// CacheStreamConfig is the cache stream of one app: the last event of each
// cache channel, for CacheTTL. It is a stream of its own rather than a
// longer per-message TTL in the events stream: there, messages kept longer
// than the window would hold the stream's first sequence back while other
// channels' events age out behind it, and a resume could no longer prove
// from the first sequence that nothing after its position was removed.
// Nothing is republished from it: live delivery comes from the events
// stream.
func CacheStreamConfig(app *appconf.App, opt StreamOptions) jetstream.StreamConfig {
	replicas, maxBytes := opt.limits()
	return jetstream.StreamConfig{
		Name:              names.CacheStream(app.ID),
		Description:       "Herald cache channels' last events of app " + app.ID,
		Subjects:          []string{names.CacheSubjects(app.ID)},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxAge:            CacheTTL,
		// One event per cache channel: a tenth of the events stream's cap.
		MaxBytes:    max(maxBytes/10, 1<<20),
		MaxMsgSize:  maxMsgSize(app),
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
		AllowDirect: true,
	}
}

// EnsureCacheStream creates the app's cache stream, or updates it to the
// current configuration when it differs (see package ensure).
func EnsureCacheStream(ctx context.Context, js jetstream.JetStream, app *appconf.App, opt StreamOptions) (jetstream.Stream, error) {
	return ensure.Stream(ctx, js, CacheStreamConfig(app, opt))
}

// CacheMsg builds the cache stream message of an event stored in the events
// stream with sequence seq: the same name, data and exclusion, and seq in
// names.HeaderEventSequence.
func (e Event) CacheMsg(seq uint64) *nats.Msg {
	m := nats.NewMsg(names.CacheSubject(e.AppID, e.Channel))
	m.Header.Set(names.HeaderEvent, e.Name)
	if e.ExcludeSocketID != "" {
		m.Header.Set(names.HeaderExclude, e.ExcludeSocketID)
	}
	m.Header.Set(names.HeaderEventSequence, strconv.FormatUint(seq, 10))
	m.Data = []byte(e.Data)
	return m
}
