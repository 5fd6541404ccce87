package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeCentrifugo answers Centrifugo's publish API: 200 with {"result":{}}
// for the right key, 200 with {"error":…} for a JSON body that is not an
// object with data, 401 without the key.
func fakeCentrifugo(t *testing.T, key string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/publish", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != key {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		var req struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &req) != nil || req.Channel == "" || len(req.Data) == 0 || req.Data[0] != '{' {
			w.Write([]byte(`{"error":{"code":107,"message":"bad request"}}`))
			return
		}
		n.Add(1)
		w.Write([]byte(`{"result":{}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPublishClosedLoop(t *testing.T) {
	_, herald := startFake(t)
	centrifugo, published := fakeCentrifugo(t, "api-key")
	tests := []struct {
		name string
		args []string
	}{
		{"herald", []string{"-api", herald.URL}},
		{"centrifugo", []string{"-target", "centrifugo", "-centrifugo-api-key", "api-key", "-api", centrifugo.URL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-publish", "-publishers", "4", "-channels", "2", "-duration", "300ms",
				"-server-pid", strconv.Itoa(os.Getpid())}, tc.args...)
			rep, logs := runJSON(t, args...)
			if got := num(t, rep, "failed"); got != 0 {
				t.Fatalf("failed requests: %v\n%s", got, logs)
			}
			ok := num(t, rep, "ok")
			if ok < 4 || num(t, rep, "latency", "count") != ok || num(t, rep, "requests_per_sec") <= 0 {
				t.Fatalf("ok %v, report %v", ok, rep)
			}
			if num(t, rep, "server_cpu_per_request_ns") <= 0 {
				t.Errorf("no server CPU per request in %v", rep)
			}
		})
	}
	// Warm-up: one request per publisher, then the run's.
	if published.Load() < 5 {
		t.Errorf("centrifugo got %d publications", published.Load())
	}
}

func TestPublishRefusedFailsEarly(t *testing.T) {
	centrifugo, _ := fakeCentrifugo(t, "api-key")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-publish", "-target", "centrifugo", "-centrifugo-api-key", "wrong",
		"-api", centrifugo.URL, "-duration", "10s"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("error = %v, want the 401 of the warm-up", err)
	}
}

func TestPublishFlags(t *testing.T) {
	checkFlags(t, []flagCase{
		{"herald needs credentials", []string{"-publish"}, "required"},
		{"centrifugo needs its key", []string{"-publish", "-target", "centrifugo"}, "-centrifugo-api-key"},
		{"unknown target", []string{"-publish", "-target", "x", "-app-id", "a", "-key", "k", "-secret", "s"}, "-target"},
		{"bounds publishers", []string{"-publish", "-publishers", "0", "-app-id", "a", "-key", "k", "-secret", "s"}, "-publishers"},
		{"loopback only", []string{"-publish", "-target", "centrifugo", "-centrifugo-api-key", "k", "-api", "http://example.com"}, "loopback"},
		{"fine", []string{"-publish", "-target", "centrifugo", "-centrifugo-api-key", "k", "-publishers", "64"}, ""},
	})
}
