package names

import (
	"strings"
	"testing"
)

func TestCacheNames(t *testing.T) {
	if got := CacheSubject("my.app", "cache-a.b"); got != "herald.cache.my=2Eapp.cache-a=2Eb" {
		t.Fatalf("CacheSubject = %q", got)
	}
	if got := CacheSubjects("my.app"); got != "herald.cache.my=2Eapp.*" {
		t.Fatalf("CacheSubjects = %q", got)
	}
	ch, err := ChannelFromSubject(CacheSubject("app", "presence-cache-room.1"))
	if err != nil || ch != "presence-cache-room.1" {
		t.Fatalf("ChannelFromSubject = %q, %v", ch, err)
	}
	if s := CacheStream("a.b c*"); strings.ContainsAny(s, ". *>") || s == EventsStream("a.b c*") {
		t.Fatalf("cache stream name %q", s)
	}
	// The cache stream's subjects must not overlap the events stream's:
	// JetStream refuses two streams on the same subjects.
	if strings.HasPrefix(CacheSubject("a", "c"), Prefix+".ev.") || strings.HasPrefix(CacheSubject("a", "c"), Prefix+".live.") {
		t.Fatal("cache subjects overlap events or live subjects")
	}
}
