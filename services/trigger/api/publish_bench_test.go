package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/signing"
	"github.com/nats-io/nats.go"
)

// BenchmarkPublish is the trigger's own cost of one POST /apps/{id}/events
// with a 100-byte event, the handler called directly (no HTTP client or
// socket) against a real embedded JetStream reached in-process, as
// services/herald runs it. "serial" is one request at a time; "parallel"
// keeps GOMAXPROCS×8 requests in flight, so their publishes overlap.
func BenchmarkPublish(b *testing.B) {
	srv := natstest.Start(b)
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	apps, err := appconf.NewRegistry(testApps)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := api.New(ctx, api.Options{Apps: apps, NC: nc, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	body := `{"name":"App\\Events\\OrderShipped","data":"{\"order\":{\"id\":12345,\"status\":\"shipped\",\"note\":\"` +
		strings.Repeat("x", 40) + `\"}}","channel":"private-orders.1"}`
	q := signing.SignRequest(http.MethodPost, "/apps/app1/events", nil, []byte(body), testApps[0].Key, testApps[0].Secret, now)
	target := "/apps/app1/events?" + q
	serve := func(b *testing.B) {
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve(b)
				n.Add(1)
			}
		})
		_ = strconv.Itoa(int(n.Load()))
	})
}
