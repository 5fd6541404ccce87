// Package logtest collects what a logger or a process writes while a test
// reads it.
package logtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer safe for writers on many goroutines and a
// reader at the same time.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Records returns the JSON log records with message msg, failing tb on a
// line that is not JSON.
func (b *Buffer) Records(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			tb.Fatalf("log line is not JSON: %q", l)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Find returns the first record with message msg whose fields include
// want, or nil.
func (b *Buffer) Find(tb testing.TB, msg string, want map[string]any) map[string]any {
	tb.Helper()
	for _, rec := range b.Records(tb, msg) {
		ok := true
		for k, v := range want {
			if rec[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return rec
		}
	}
	return nil
}
