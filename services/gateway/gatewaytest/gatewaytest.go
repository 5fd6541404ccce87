// Package gatewaytest runs a gateway inside a test, behind an HTTP test
// server, on the test's embedded NATS server (shared/natstest). The tests of
// every module that need WebSocket clients start it through here.
package gatewaytest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/gateway/gateway"
)

// Start runs a gateway with opt behind an HTTP test server; the end of the
// test shuts both down.
func Start(t testing.TB, opt gateway.Options) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw, err := gateway.New(ctx, opt)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	hs := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		hs.Close()
	})
	return gw, hs
}
