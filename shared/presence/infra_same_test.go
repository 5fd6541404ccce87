package presence

import (
	"context"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// A stream already configured as asked is not updated again; a changed one is.
func TestEnsureStreamSkipsNeedlessUpdates(t *testing.T) {
	srv := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cfg := range []jetstream.StreamConfig{OpsStreamConfig(Options{}), MembersStreamConfig(Options{})} {
		s, err := EnsureStream(ctx, js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !sameStreamConfig(s.CachedInfo().Config, cfg) {
			t.Fatalf("%s: the server's config does not read as the one asked for:\nhave %+v\nwant %+v", cfg.Name, s.CachedInfo().Config, cfg)
		}
		changed := cfg
		changed.Description += " (changed)"
		if sameStreamConfig(s.CachedInfo().Config, changed) {
			t.Fatalf("%s: a changed description reads as the same config", cfg.Name)
		}
		s, err = EnsureStream(ctx, js, changed)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().Config.Description != changed.Description {
			t.Fatalf("%s: not updated", cfg.Name)
		}
	}
}
