// Package position encodes the positions of Herald's replay extension: a
// point in one channel's history on this installation, handed to clients as
// an opaque string and given back by them in a resume.
//
// A position names the incarnation of the app's events stream (its epoch:
// the stream's creation time, which survives restarts and config updates
// and changes when the stream is recreated), a stream sequence (the point
// lies just after the message with that sequence) and a time. The time is
// for people and diagnostics; no decision about completeness rests on it.
//
// A channel's current position (subscription_succeeded, the HTTP API's
// info=position) is its last stored event (Direct Get last_by_subj) or, when
// the stream holds none for it, the stream's last sequence. Read the stream's
// info (epoch, last sequence) before the channel's last event: an event
// stored in between then lands after the position, never before it.
package position

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Epoch identifies one incarnation of an events stream: its creation time
// (StreamInfo.Created) in Unix nanoseconds.
type Epoch int64

// EpochOf returns the epoch of a stream created at created.
func EpochOf(created time.Time) Epoch { return Epoch(created.UnixNano()) }

// Position is a point in a channel's history: after the message with
// sequence Seq of the stream incarnation Epoch.
type Position struct {
	Epoch Epoch
	Seq   uint64
	// Time is when the stream stored the message at Seq (or, for a point
	// between events, a time close to it). Kept to the millisecond.
	Time time.Time
}

// ErrMalformed reports a string that Parse does not accept.
var ErrMalformed = errors.New("position: malformed")

// version is the first field, so that the format can change without
// misreading positions that clients still hold.
const version = "1"

// maxLen bounds what Parse looks at; every position String makes is shorter.
const maxLen = 64

// Time is written in milliseconds since 1970 and kept within years 1970 to
// 9999, so that every accepted value maps back to the same string.
const maxMillis = 253402300799999 // 9999-12-31T23:59:59.999Z

// String encodes p as "1.<epoch>.<seq>.<ms>", numbers in base 36. A time
// outside 1970 to 9999 is written as the nearest end of that range.
func (p Position) String() string {
	ms := int64(0)
	if !p.Time.IsZero() {
		ms = min(max(p.Time.UnixMilli(), 0), maxMillis)
	}
	b := make([]byte, 0, 40)
	b = append(b, version...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(p.Epoch), 36)
	b = append(b, '.')
	b = strconv.AppendUint(b, p.Seq, 36)
	b = append(b, '.')
	b = strconv.AppendInt(b, ms, 36)
	return string(b)
}

// Parse decodes a position made by String. It accepts only the exact form
// String writes (lower-case digits, no leading zeros or signs), so one
// position has one string.
func Parse(s string) (Position, error) {
	if len(s) > maxLen {
		return Position{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(s))
	}
	ver, rest, ok := strings.Cut(s, ".")
	if !ok || ver != version {
		return Position{}, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	fields := strings.Split(rest, ".")
	if len(fields) != 3 {
		return Position{}, fmt.Errorf("%w: want 4 fields", ErrMalformed)
	}
	epoch, err := strconv.ParseInt(fields[0], 36, 64)
	if err != nil || strconv.FormatInt(epoch, 36) != fields[0] {
		return Position{}, fmt.Errorf("%w: epoch %q", ErrMalformed, fields[0])
	}
	seq, err := strconv.ParseUint(fields[1], 36, 64)
	if err != nil || strconv.FormatUint(seq, 36) != fields[1] {
		return Position{}, fmt.Errorf("%w: sequence %q", ErrMalformed, fields[1])
	}
	ms, err := strconv.ParseInt(fields[2], 36, 64)
	if err != nil || ms < 0 || ms > maxMillis || strconv.FormatInt(ms, 36) != fields[2] {
		return Position{}, fmt.Errorf("%w: time %q", ErrMalformed, fields[2])
	}
	return Position{Epoch: Epoch(epoch), Seq: seq, Time: time.UnixMilli(ms).UTC()}, nil
}

// MarshalText writes String, so a Position can sit in a JSON document.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (p *Position) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
