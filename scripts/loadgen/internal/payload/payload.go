// Package payload is the data of the load generator's events: a sequence
// number, the channel's index and the send time, padded to a chosen size;
// and the fast reader that finds them again in a received frame.
package payload

import (
	"bytes"
	"strconv"
	"strings"
)

// EventName is the Pusher event name of every load generator event.
const EventName = "loadgen"

// Event is what one event carries.
type Event struct {
	Seq     uint64 // position in its channel's sequence, from 0
	Channel uint64 // index of the channel
	SentAt  int64  // unix nanoseconds, just before the HTTP request
}

// Data returns the event's data, a JSON object as text, padded with a "pad"
// member to size bytes when size is larger than the bare object.
func (e Event) Data(size int) string {
	var b strings.Builder
	b.Grow(max(size, 64))
	b.WriteString(`{"seq":`)
	b.WriteString(strconv.FormatUint(e.Seq, 10))
	b.WriteString(`,"ch":`)
	b.WriteString(strconv.FormatUint(e.Channel, 10))
	b.WriteString(`,"t":`)
	b.WriteString(strconv.FormatInt(e.SentAt, 10))
	const padOverhead = len(`,"pad":""}`)
	if n := size - b.Len() - padOverhead; n > 0 {
		b.WriteString(`,"pad":"`)
		b.WriteString(strings.Repeat("x", n))
		b.WriteString(`"`)
	}
	b.WriteString(`}`)
	return b.String()
}

var eventMarker = []byte(`"event":"` + EventName + `"`)

// FromFrame finds the event in a frame a server sent, without decoding the
// JSON: a subscriber reads tens of thousands of frames a second on the same
// cores as the server it measures. It accepts data sent as a JSON string
// (as Pusher does, quotes escaped) or as an object. ok is false for any
// other frame.
func FromFrame(frame []byte) (e Event, ok bool) {
	if !bytes.Contains(frame, eventMarker) {
		return Event{}, false
	}
	return FromObject(frame)
}

// field reads the unsigned number after the member name key, written as
// \"key\": (inside a JSON string) or "key": (in an object).
func field(frame []byte, key string) (uint64, bool) {
	for _, pat := range []string{`\"` + key + `\":`, `"` + key + `":`} {
		i := bytes.Index(frame, []byte(pat))
		if i < 0 {
			continue
		}
		rest := frame[i+len(pat):]
		n := 0
		for n < len(rest) && n < 20 && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 0 {
			return 0, false
		}
		v, err := strconv.ParseUint(string(rest[:n]), 10, 64)
		return v, err == nil
	}
	return 0, false
}

// FromObject finds the event in a line whose data is a JSON object (as
// Centrifugo sends a publication), without the Pusher event name; like
// FromFrame, it also reads data sent as a JSON string.
func FromObject(line []byte) (e Event, ok bool) {
	seq, ok1 := field(line, "seq")
	ch, ok2 := field(line, "ch")
	t, ok3 := field(line, "t")
	if !ok1 || !ok2 || !ok3 || t > 1<<63-1 {
		return Event{}, false
	}
	return Event{Seq: seq, Channel: ch, SentAt: int64(t)}, true
}
