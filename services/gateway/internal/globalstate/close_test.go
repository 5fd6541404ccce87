package globalstate

import (
	"context"
	"testing"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/presence"
)

// A gateway that leaves purges its heartbeat key with a marker that
// expires: gateway boots leave nothing in the bucket for good.
func TestClosePurgesWithAnExpiringMarker(t *testing.T) {
	s := natstest.Start(t)
	a, _ := startGateway(t, s, "gw-a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, js := natstest.JetStream(t, s)
	stream, err := js.Stream(ctx, "KV_"+names.GatewaysBucket)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, "$KV."+names.GatewaysBucket+"."+names.GatewayKey("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	if op := m.Header.Get("KV-Operation"); op != "PURGE" {
		t.Fatalf("last message of the key: operation %q, want PURGE", op)
	}
	if ttl := m.Header.Get(names.HeaderNatsTTL); ttl != presence.MarkerTTL.String() {
		t.Fatalf("purge marker TTL %q, want %q", ttl, presence.MarkerTTL)
	}
}
