package names

import (
	"regexp"
	"strings"
	"testing"
)

var kvKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestPresenceKeysAndSubjects(t *testing.T) {
	channels := []string{"presence-room", "private-a.b", "#server-to-user-7", "news;eu,@x=1"}
	for _, ch := range channels {
		for _, key := range []string{ChannelStateKey("my app", ch), GatewayStateKey("gw.1"), GatewayKey("gw 1")} {
			if !kvKey.MatchString(key) {
				t.Errorf("key %q is not a valid KV key", key)
			}
		}
		// app and channel are one token each.
		for _, subj := range []string{MemberEventSubject("a.b", ch), MemberLiveSubject("a.b", ch), SubscriptionCountSubject("a.b", ch)} {
			if n := strings.Count(subj, "."); n != 4 {
				t.Errorf("subject %q has %d dots, want 4", subj, n)
			}
		}
		if got, err := ChannelFromSubject(MemberLiveSubject("a", ch)); err != nil || got != ch {
			t.Errorf("ChannelFromSubject(MemberLiveSubject(%q)) = %q, %v", ch, got, err)
		}
	}
	if !strings.HasPrefix(ChannelStateKey("a", "news.eu"), ChannelStatePrefix("a", "news.")) {
		t.Fatal("channel state prefix does not preserve name prefixes")
	}
	if strings.Count(PresenceOpSubject("gw.1"), ".") != 3 {
		t.Fatalf("ops subject %q", PresenceOpSubject("gw.1"))
	}
}
