package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go/jetstream"
)

// Reader answers channel queries (the trigger API's GET /channels,
// /channels/{name} and /channels/{name}/users) from names.PresenceStateBucket,
// without asking any gateway. What it reads is what the presence service
// last persisted: at most a flush interval behind the operations it applied.
type Reader struct {
	kv jetstream.KeyValue
}

// NewReader opens the state bucket, creating it when no presence service has
// yet (every channel is then unoccupied), waiting for JetStream until ctx
// ends.
func NewReader(ctx context.Context, js jetstream.JetStream, o Options) (*Reader, error) {
	kv, err := ensure.OpenBucket(ctx, js, StateBucketConfig(o))
	if err != nil {
		return nil, fmt.Errorf("opening channel state: %w", err)
	}
	return &Reader{kv: kv}, nil
}

// ChannelInfo is what the HTTP API tells about one channel.
type ChannelInfo struct {
	Name string
	// Occupied: at least one subscription on some gateway (or, on a
	// presence channel, a member held through a gateway's drain grace).
	Occupied          bool
	SubscriptionCount int
	// UserCount is the number of distinct users of a presence channel.
	UserCount int
}

// Channel returns the state of one channel; an unoccupied channel has zero
// counts and no error.
func (r *Reader) Channel(ctx context.Context, appID, channel string) (ChannelInfo, error) {
	st, err := r.state(ctx, appID, channel)
	if err != nil || st == nil {
		return ChannelInfo{Name: channel}, err
	}
	return st.info(), nil
}

// Channels returns the occupied channels of an app whose names start with
// prefix ("" for all), sorted by name.
func (r *Reader) Channels(ctx context.Context, appID, prefix string) ([]ChannelInfo, error) {
	w, err := r.kv.Watch(ctx, names.ChannelStateKeys(appID), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("listing channels of %s: %w", appID, err)
	}
	defer w.Stop()
	keyPrefix := names.ChannelStatePrefix(appID, prefix)
	var out []ChannelInfo
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("listing channels of %s: %w", appID, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("listing channels of %s: watcher closed", appID)
			}
			if e == nil { // every current key has been delivered
				slices.SortFunc(out, func(a, b ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
				return out, nil
			}
			if !strings.HasPrefix(e.Key(), keyPrefix) {
				continue
			}
			var st ChannelState
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return nil, fmt.Errorf("reading channel key %s: %w", e.Key(), err)
			}
			if info := st.info(); info.Occupied {
				out = append(out, info)
			}
		}
	}
}

// Users returns the user ids of a presence channel's members, sorted.
func (r *Reader) Users(ctx context.Context, appID, channel string) ([]string, error) {
	st, err := r.state(ctx, appID, channel)
	if err != nil || st == nil {
		return nil, err
	}
	ids := make([]string, 0, len(st.Members))
	for id := range st.Members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func (r *Reader) state(ctx context.Context, appID, channel string) (*ChannelState, error) {
	e, err := r.kv.Get(ctx, names.ChannelStateKey(appID, channel))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading channel %s of %s: %w", channel, appID, err)
	}
	var st ChannelState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("reading channel %s of %s: %w", channel, appID, err)
	}
	return &st, nil
}

func (st *ChannelState) info() ChannelInfo {
	return ChannelInfo{
		Name:              st.Channel,
		Occupied:          st.SubscriptionCount > 0 || len(st.Members) > 0,
		SubscriptionCount: st.SubscriptionCount,
		UserCount:         len(st.Members),
	}
}
