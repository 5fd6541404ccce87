package names

import (
	"errors"
	"strings"
	"testing"
)

func TestEncodeToken(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "orders", "orders"},
		{"private", "private-orders_1", "private-orders_1"},
		{"dot", "private-user.42", "private-user=2E42"},
		{"wildcards", "a*b>c", "a=2Ab=3Ec"},
		{"equals", "x=2E", "x=3D2E"},
		{"server to user", "#server-to-user-7", "=23server-to-user-7"},
		{"empty", "", ""},
		{"utf8", "é", "=C3=A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeToken(tt.in)
			if got != tt.want {
				t.Fatalf("EncodeToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := DecodeToken(got)
			if err != nil || back != tt.in {
				t.Fatalf("DecodeToken(%q) = %q, %v", got, back, err)
			}
		})
	}
}

func TestDecodeTokenRefusesNonCanonical(t *testing.T) {
	for _, tok := range []string{"a.b", "a*", ">", "=2e", "=41", "=", "=4", "a b", "=G0"} {
		if _, err := DecodeToken(tok); !errors.Is(err, ErrBadToken) {
			t.Errorf("DecodeToken(%q) err = %v, want ErrBadToken", tok, err)
		}
	}
}

func TestSubjects(t *testing.T) {
	if got := EventSubject("my.app", "private-a.b"); got != "herald.ev.my=2Eapp.private-a=2Eb" {
		t.Fatalf("EventSubject = %q", got)
	}
	ch, err := ChannelFromSubject(LiveSubject("app", "presence-room.1"))
	if err != nil || ch != "presence-room.1" {
		t.Fatalf("ChannelFromSubject = %q, %v", ch, err)
	}
	if live, ok := LiveSubjectOfClient(ClientEventSubject("my.app", "private-a.b")); !ok || live != LiveSubject("my.app", "private-a.b") {
		t.Fatalf("LiveSubjectOfClient = %q, %v", live, ok)
	}
	if _, ok := LiveSubjectOfClient(LiveSubject("app", "c")); ok {
		t.Fatal("LiveSubjectOfClient took a live subject")
	}
	if strings.ContainsAny(EventsStream("a.b c*"), ". *>") {
		t.Fatalf("stream name %q holds a forbidden character", EventsStream("a.b c*"))
	}
}

func FuzzTokenRoundTrip(f *testing.F) {
	for _, s := range []string{"", "orders", "a.b", "*", ">", "=", "=2E", "#server-to-user-1", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := EncodeToken(s)
		if strings.ContainsAny(tok, ". *>\t\r\n/\\") {
			t.Fatalf("token %q of %q holds a subject metacharacter", tok, s)
		}
		back, err := DecodeToken(tok)
		if err != nil || back != s {
			t.Fatalf("round trip of %q: %q, %v", s, back, err)
		}
		// Decoding arbitrary input either fails or gives a name whose
		// encoding is that input: one name, one token.
		if name, err := DecodeToken(s); err == nil && EncodeToken(name) != s {
			t.Fatalf("DecodeToken(%q) = %q, which encodes to %q", s, name, EncodeToken(name))
		}
		// Prefix preservation.
		if len(s) > 1 {
			p := s[:len(s)/2]
			if !strings.HasPrefix(tok, EncodeToken(p)) {
				t.Fatalf("encoding of prefix %q is not a prefix of %q", p, tok)
			}
		}
	})
}
