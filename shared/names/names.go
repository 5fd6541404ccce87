// Package names holds every NATS subject, stream and bucket name Herald uses,
// and the reversible encoding that turns app ids and channel names into
// subject tokens and KV keys.
//
// Every service builds its names here so that they agree byte for byte.
package names

import (
	"errors"
	"fmt"
	"strings"
)

// Prefix is the first token of every Herald subject.
const Prefix = "herald"

// Header names carried by event messages on the bus.
const (
	// HeaderEvent holds the Pusher event name of a stored or relayed event.
	HeaderEvent = "Herald-Event"
	// HeaderExclude holds the socket_id that must not receive the event.
	HeaderExclude = "Herald-Exclude"
	// HeaderUserID holds the sender's user id on presence client events.
	HeaderUserID = "Herald-User-Id"
)

// Headers that JetStream adds to republished messages.
const (
	HeaderNatsSequence     = "Nats-Sequence"
	HeaderNatsLastSequence = "Nats-Last-Sequence"
	HeaderNatsStream       = "Nats-Stream"
	HeaderNatsSubject      = "Nats-Subject"
	HeaderNatsMsgID        = "Nats-Msg-Id"
	// HeaderNatsTTL is the age at which JetStream removes a message
	// (streams that allow message TTLs).
	HeaderNatsTTL = "Nats-TTL"
)

// EncodeToken writes s as a string that is valid as one NATS subject token,
// as a stream-name part and as a KV key part: [A-Za-z0-9_-] stay as they are,
// every other byte becomes =HH (upper-case hex). The encoding is reversible,
// injective and prefix-preserving, so a prefix filter on channel names maps
// to a prefix filter on tokens.
func EncodeToken(s string) string {
	n := escapes(s)
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	writeToken(&b, s)
	return b.String()
}

// escapes counts the bytes of s that EncodeToken escapes.
func escapes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			n++
		}
	}
	return n
}

// writeToken writes EncodeToken(s) to b.
func writeToken(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&0x0f])
	}
}

// channelSubject is prefix + EncodeToken(appID) + "." +
// EncodeToken(channel), built in one allocation: a publish builds one for
// every event.
func channelSubject(prefix, appID, channel string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(appID) + 2*escapes(appID) + 1 + len(channel) + 2*escapes(channel))
	b.WriteString(prefix)
	writeToken(&b, appID)
	b.WriteByte('.')
	writeToken(&b, channel)
	return b.String()
}

// ErrBadToken reports a token that EncodeToken cannot have produced.
var ErrBadToken = errors.New("names: malformed token")

// DecodeToken reverses EncodeToken. It refuses any token EncodeToken would
// not produce (lower-case hex, an escaped plain byte, a stray character), so
// that one name has exactly one token.
func DecodeToken(t string) (string, error) {
	if !strings.ContainsRune(t, '=') {
		for i := 0; i < len(t); i++ {
			if !plain(t[i]) {
				return "", fmt.Errorf("%w: byte %q at %d", ErrBadToken, t[i], i)
			}
		}
		return t, nil
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if plain(c) {
			b = append(b, c)
			continue
		}
		if c != '=' || i+2 >= len(t) {
			return "", fmt.Errorf("%w: byte %q at %d", ErrBadToken, c, i)
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad escape at %d", ErrBadToken, i)
		}
		v := hi<<4 | lo
		if plain(v) {
			return "", fmt.Errorf("%w: needless escape at %d", ErrBadToken, i)
		}
		b = append(b, v)
		i += 2
	}
	return string(b), nil
}

const hexdigits = "0123456789ABCDEF"

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// EventsStream is the JetStream stream that stores an app's channel events.
func EventsStream(appID string) string { return "HERALD_EV_" + EncodeToken(appID) }

// EventsSubjects is the subject filter of an app's events stream.
func EventsSubjects(appID string) string { return Prefix + ".ev." + EncodeToken(appID) + ".*" }

// EventSubject is where the trigger API publishes an event for one channel.
func EventSubject(appID, channel string) string {
	return channelSubject(Prefix+".ev.", appID, channel)
}

// LiveSubject is where the events stream republishes a stored event, and
// where gateways listen for a channel with local subscribers.
func LiveSubject(appID, channel string) string {
	return channelSubject(Prefix+".live.", appID, channel)
}

// LiveRepublishDestination maps EventsSubjects onto LiveSubject.
func LiveRepublishDestination(appID string) string {
	return Prefix + ".live." + EncodeToken(appID) + ".{{wildcard(1)}}"
}

// ClientEventSubject carries client-* events between gateways. They are never
// stored: core NATS only.
func ClientEventSubject(appID, channel string) string {
	return Prefix + ".client." + EncodeToken(appID) + "." + EncodeToken(channel)
}

// ClientEventSubjects matches every ClientEventSubject: a gateway listens
// on it once for all its channels.
func ClientEventSubjects() string { return Prefix + ".client.*.*" }

// LiveSubjectOfClient returns the LiveSubject of the channel of a client
// event subject, or false if subject is not one.
func LiveSubjectOfClient(subject string) (string, bool) {
	const client = Prefix + ".client."
	if !strings.HasPrefix(subject, client) {
		return "", false
	}
	return Prefix + ".live." + subject[len(client):], true
}

// ChannelFromSubject returns the channel name of an events, live or client
// subject (the last token).
func ChannelFromSubject(subject string) (string, error) {
	i := strings.LastIndexByte(subject, '.')
	if i < 0 {
		return "", fmt.Errorf("%w: subject %q has no channel token", ErrBadToken, subject)
	}
	return DecodeToken(subject[i+1:])
}

// GatewayStatusSubject carries each gateway's figures for the status page
// (shared/status), on core NATS.
const GatewayStatusSubject = Prefix + ".status.gateway"
