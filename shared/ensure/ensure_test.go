package ensure_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func streamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "TEST_EV",
		Description:       "test events",
		Subjects:          []string{"test.ev.>"},
		MaxMsgsPerSubject: 100,
		MaxAge:            5 * time.Minute,
		MaxBytes:          1 << 20,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Duplicates:        time.Minute,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: "test.ev.>", Destination: "test.live.>"},
	}
}

func bucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         "TEST_KV",
		Description:    "test bucket",
		Storage:        jetstream.FileStorage,
		Replicas:       replicas,
		LimitMarkerTTL: time.Minute,
	}
}

// What exists and matches is left alone (its update time does not move);
// what differs is updated; OpenStream never updates.
func TestUpdatesOnlyWhatDiffers(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.JetStream(t, srv)
	// Every update request of the JetStream API, as the server gets it.
	updates, err := nc.SubscribeSync("$JS.API.STREAM.UPDATE.>")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := streamConfig(1)
	s, err := ensure.Stream(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !ensure.SameStream(s.CachedInfo().Config, cfg) {
		t.Fatalf("the server's config does not read as the one declared:\nhave %+v\nwant %+v", s.CachedInfo().Config, cfg)
	}
	if _, err = ensure.Stream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := updates.Pending(); n != 0 {
		t.Errorf("an unchanged stream was updated (%d update requests)", n)
	}
	changed := cfg
	changed.Description += " (changed)"
	if s, err = ensure.OpenStream(ctx, js, changed); err != nil || s.CachedInfo().Config.Description != cfg.Description {
		t.Fatalf("OpenStream updated the stream (or failed: %v)", err)
	}
	if s, err = ensure.Stream(ctx, js, changed); err != nil || s.CachedInfo().Config.Description != changed.Description {
		t.Fatalf("a changed stream was not updated (err %v)", err)
	}

	bcfg := bucketConfig(1)
	kv, err := ensure.Bucket(ctx, js, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ensure.SameBucket(st.Config(), bcfg) {
		t.Fatalf("the server's bucket does not read as the one declared:\nhave %+v\nwant %+v", st.Config(), bcfg)
	}
	bchanged := bcfg
	bchanged.Description += " (changed)"
	if ensure.SameBucket(st.Config(), bchanged) {
		t.Fatal("a changed description reads as the same bucket")
	}
	if kv, err = ensure.Bucket(ctx, js, bchanged); err != nil {
		t.Fatal(err)
	}
	if st, err = kv.Status(ctx); err != nil || st.Config().Description != bchanged.Description {
		t.Fatalf("bucket not updated: %v", err)
	}
}

// A configuration the server refuses is an error at once, not a wait.
func TestRefusedConfigurationFails(t *testing.T) {
	srv := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Three replicas on a server that is not clustered.
	if _, err := ensure.Stream(ctx, js, streamConfig(3)); err == nil || ctx.Err() != nil {
		t.Fatalf("err = %v (ctx %v), want the server's refusal", err, ctx.Err())
	}
}

// Services started at the same moment on a fresh 3-node cluster all ensure
// the same R3 streams and buckets. (A create or update racing another one
// for the same replicated stream can go unanswered: each attempt has its own
// bound, and a stream that exists as declared is not updated.)
func TestConcurrentOnACluster(t *testing.T) {
	url := natstest.ClientURLs(natstest.StartCluster(t, 3))
	const services = 6
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, services)
	for i := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := nats.Connect(url)
			if err != nil {
				errs[i] = err
				return
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				errs[i] = err
				return
			}
			for n := range 3 {
				cfg := streamConfig(3)
				cfg.Name = fmt.Sprintf("TEST_EV_%d", n)
				cfg.Subjects = []string{fmt.Sprintf("test.ev%d.>", n)}
				cfg.RePublish = nil
				if _, err := ensure.Stream(ctx, js, cfg); err != nil {
					errs[i] = err
					return
				}
			}
			if _, err := ensure.Bucket(ctx, js, bucketConfig(3)); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("service %d: %v", i, err)
		}
	}
}

// Wait retries a step until it succeeds, but returns at once an error
// marked permanent or a closed connection.
func TestWait(t *testing.T) {
	transient := errors.New("nats: no response from stream")
	tests := []struct {
		name     string
		errs     []error // of the attempts, in turn; then success
		attempts int
		wantErr  bool
	}{
		{"first try", nil, 1, false},
		{"transient errors are retried", []error{transient, nats.ErrTimeout, context.DeadlineExceeded}, 4, false},
		{"permanent stops", []error{transient, ensure.Permanent(transient)}, 2, true},
		{"closed connection stops", []error{nats.ErrConnectionClosed}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := ensure.Wait(context.Background(), "step", func(context.Context) error {
				n++
				if n <= len(tt.errs) {
					return tt.errs[n-1]
				}
				return nil
			})
			if (err != nil) != tt.wantErr || n != tt.attempts {
				t.Fatalf("err %v after %d attempts, want error %v after %d", err, n, tt.wantErr, tt.attempts)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ensure.Wait(ctx, "step", func(context.Context) error { return transient }); !errors.Is(err, context.Canceled) {
		t.Fatalf("after the context ended: %v", err)
	}
}

// A stream ensured while JetStream is not available yet waits for it.
func TestStreamWaitsForJetStream(t *testing.T) {
	natstest.CheckWaitsForJetStream(t, func(ctx context.Context, js jetstream.JetStream) error {
		_, err := ensure.Stream(ctx, js, streamConfig(1))
		return err
	})
}
