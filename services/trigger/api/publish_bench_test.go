package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/trigger/api"
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
	h := benchHandler(b)
	benchServe(b, h, "/apps/app1/events", benchEvent)
}

// BenchmarkPublishBatch is POST /apps/{id}/batch_events with 5 events of
// 100 bytes: on 5 channels (one wave of publishes) and all on one channel
// (five waves, each waiting for the acks of the one before: the price of
// the channel's order).
func BenchmarkPublishBatch(b *testing.B) {
	h := benchHandler(b)
	for _, tc := range []struct{ name, channel string }{
		{"5 channels", "private-orders.%d"},
		{"1 channel", "private-orders.1"},
	} {
		var items []string
		for k := range 5 {
			ch := tc.channel
			if strings.Contains(ch, "%d") {
				ch = fmt.Sprintf(ch, k)
			}
			items = append(items, `{"channel":"`+ch+`","name":"App\\Events\\OrderShipped","data":"{\"order\":{\"id\":12345,\"note\":\"`+
				strings.Repeat("x", 60)+`\"}}"}`)
		}
		b.Run(tc.name, func(b *testing.B) {
			benchServe(b, h, "/apps/app1/batch_events", `{"batch":[`+strings.Join(items, ",")+`]}`)
		})
	}
}

// benchEvent is the body of BenchmarkPublish's request: one 100-byte event.
var benchEvent = `{"name":"App\\Events\\OrderShipped","data":"{\"order\":{\"id\":12345,\"status\":\"shipped\",\"note\":\"` +
	strings.Repeat("x", 40) + `\"}}","channel":"private-orders.1"}`

// benchHandler is the trigger API on an embedded JetStream reached
// in-process.
func benchHandler(b *testing.B) http.Handler {
	srv := natstest.Start(b)
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return startAPI(b, nc, testApps, api.Options{}).Handler()
}

// benchServe runs the signed POST of body to path "serial" (one request at
// a time) and "parallel" (GOMAXPROCS×8 requests in flight, their
// publishes overlapping).
func benchServe(b *testing.B, h http.Handler, path, body string) {
	q := signing.SignRequest(http.MethodPost, path, nil, []byte(body), testApps[0].Key, testApps[0].Secret, now)
	target := path + "?" + q
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
		defer reportCPU(b)()
		for b.Loop() {
			serve(b)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve(b)
			}
		})
	})
}

// reportCPU reports the CPU time of the whole process (the handler and the
// embedded NATS server) per request, from now until the returned function
// is called: on a machine shared with other work it moves less than the
// wall time per request.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
