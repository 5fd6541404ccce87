package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A report made without -server-pid or without latencies has no figure for
// those rows: -compare prints "–" for them rather than failing.
func TestCompareReportsWithoutServerFigures(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := file("load.json", `{"mode":"fanout"}`)
	idle := file("idle.json", `{"mode":"idle","server":{"rss_per_conn":2048}}`)
	bare := file("bare.json", `{"mode":"idle"}`)
	var out strings.Builder
	if err := runCompare([]string{"load=" + load, "idle=" + idle + "," + bare}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| load | latency p99 (publish → client) | – | – | – |",
		"| idle | RSS per connection | 2.0 KiB | – | – |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s", want, out.String())
		}
	}
	if err := runCompare([]string{"nofile"}, &out); err == nil || !strings.Contains(err.Error(), "NAME=FILE") {
		t.Errorf("an argument without = : err %v", err)
	}
}
