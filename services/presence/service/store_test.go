package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go/jetstream"
)

// Channels that come and go leave nothing in the state bucket once their
// purge markers expire, and the fence still holds afterwards: the expiry
// moved no sequence.
func TestRemovedKeysLeaveNothingBehind(t *testing.T) {
	_, js := setup(t)
	ctx := context.Background()
	kv, err := ensure.Bucket(ctx, js, presence.StateBucketConfig(presence.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStore(ctx, js, kv)
	if err != nil {
		t.Fatal(err)
	}
	st.markerTTL = time.Second // the least JetStream takes
	if err := st.fence(ctx, presence.Meta{Instance: "a", Term: 1}); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_HERALD_PRESENCE")
	if err != nil {
		t.Fatal(err)
	}
	held := func() (msgs uint64, subjects uint64) {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs, info.State.NumSubjects
	}
	baseMsgs, baseSubjects := held()

	// 200 channels occupied, then vacated: one flush writes them, the next
	// removes them.
	const n = 200
	var occupied, vacated []state.Write
	for i := range n {
		key := fmt.Sprintf("ch.app.c%d", i)
		occupied = append(occupied, state.Write{Key: key, Value: []byte(`{"subscription_count":1}`)})
		vacated = append(vacated, state.Write{Key: key})
	}
	if err := st.write(ctx, occupied); err != nil {
		t.Fatal(err)
	}
	if err := st.write(ctx, vacated); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := held(); msgs != baseMsgs+n {
		t.Fatalf("after the removals the bucket holds %d messages, want %d (the markers)", msgs, baseMsgs+n)
	}
	if _, err := kv.Get(ctx, "ch.app.c0"); err == nil {
		t.Fatal("a removed key still reads")
	}
	var msgs, subjects uint64
	if !poll.Within(20*time.Second, func() bool {
		msgs, subjects = held()
		return msgs == baseMsgs && subjects == baseSubjects
	}) {
		t.Fatalf("the bucket holds %d messages on %d keys, %d on %d before the channels came", msgs, subjects, baseMsgs, baseSubjects)
	}

	// The writer's fence still expects its own last write.
	if err := st.write(ctx, []state.Write{{Key: "ch.app.again", Value: []byte(`{}`)}}); err != nil {
		t.Fatalf("write after the markers expired: %v", err)
	}
	if _, err := kv.Get(ctx, "ch.app.again"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "ch.app.c0"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("removed key after its marker expired: %v, want ErrKeyNotFound", err)
	}
}

// A state bucket created before its keys' markers expired (no message
// TTLs) is updated by the service's ensure, and then takes them.
func TestStateBucketFromBeforeMarkerTTLs(t *testing.T) {
	_, js := setup(t)
	ctx := context.Background()
	old := presence.StateBucketConfig(presence.Options{})
	old.LimitMarkerTTL = 0
	if _, err := js.CreateKeyValue(ctx, old); err != nil {
		t.Fatal(err)
	}
	kv, err := ensure.Bucket(ctx, js, presence.StateBucketConfig(presence.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStore(ctx, js, kv)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.fence(ctx, presence.Meta{Instance: "a", Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.write(ctx, []state.Write{{Key: "ch.app.c", Value: []byte(`{}`)}, {Key: "ch.app.c"}}); err != nil {
		t.Fatalf("a purge with a TTL on the updated bucket: %v", err)
	}
}
