// Package protocol holds the Pusher protocol 7 wire types, codes, channel
// name rules and the decoder for frames that clients send.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Event names of the Pusher protocol.
const (
	EventConnectionEstablished = "pusher:connection_established"
	EventError                 = "pusher:error"
	EventPing                  = "pusher:ping"
	EventPong                  = "pusher:pong"
	EventSubscribe             = "pusher:subscribe"
	EventUnsubscribe           = "pusher:unsubscribe"
	EventSignin                = "pusher:signin"
	EventSigninSuccess         = "pusher:signin_success"
	EventSubscriptionError     = "pusher:subscription_error"
	EventCacheMiss             = "pusher:cache_miss"
	EventSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	EventMemberAdded           = "pusher_internal:member_added"
	EventMemberRemoved         = "pusher_internal:member_removed"
	EventSubscriptionCount     = "pusher_internal:subscription_count"
	EventWatchlistEvents       = "pusher_internal:watchlist_events"
	EventHeraldResumed         = "herald:resumed"
	EventHeraldResumeFailed    = "herald:resume_failed"
)

// Frame is one message a client sent. Data keeps its raw JSON: pusher-js
// sends an object for pusher:* events, and client events carry whatever the
// app passed.
type Frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// ErrMalformed reports a frame that is not a Pusher message.
var ErrMalformed = errors.New("protocol: malformed frame")

// DecodeFrame parses one client frame. It refuses anything that is not a JSON
// object with a string "event", and a "channel" that is present but not a
// string.
func DecodeFrame(b []byte) (Frame, error) {
	if f, ok := scanFrame(bytes.TrimSpace(b)); ok {
		return f, nil
	}
	return decodeFrame(b)
}

// decodeFrame is DecodeFrame through encoding/json: what scanFrame leaves to
// it, and every refusal with its reason.
func decodeFrame(b []byte) (Frame, error) {
	var raw struct {
		Event   *json.RawMessage `json:"event"`
		Channel *json.RawMessage `json:"channel"`
		Data    json.RawMessage  `json:"data"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Frame{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Frame{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var f Frame
	if raw.Event == nil {
		return Frame{}, fmt.Errorf("%w: no event", ErrMalformed)
	}
	if err := json.Unmarshal(*raw.Event, &f.Event); err != nil || f.Event == "" {
		return Frame{}, fmt.Errorf("%w: event is not a non-empty string", ErrMalformed)
	}
	if raw.Channel != nil && string(*raw.Channel) != "null" {
		if err := json.Unmarshal(*raw.Channel, &f.Channel); err != nil {
			return Frame{}, fmt.Errorf("%w: channel is not a string", ErrMalformed)
		}
	}
	f.Data = raw.Data
	return f, nil
}

// scanFrame reads the frames clients send every time (pusher:subscribe and
// the like) without encoding/json's reflection, a third of a subscribe's
// decoding: a valid JSON object whose keys and "event" and "channel" strings
// have no escapes and are ASCII or valid UTF-8. It gives what decodeFrame
// would, and false for anything else, decodeFrame's to read or refuse.
func scanFrame(b []byte) (Frame, bool) {
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return Frame{}, false
	}
	var f Frame
	var data []byte
	hasEvent := false
	ok := members(b, func(key, value []byte) bool {
		// encoding/json matches keys to fields without regard to case.
		switch {
		case asciiFold(key, "event"):
			if value[0] == 'n' {
				f.Event, hasEvent = "", false
				return true
			}
			ev, ok := plainValue(value)
			f.Event, hasEvent = ev, true
			return ok
		case asciiFold(key, "channel"):
			if value[0] == 'n' {
				f.Channel = ""
				return true
			}
			ch, ok := plainValue(value)
			f.Channel = ch
			return ok
		case asciiFold(key, "data"):
			data = value
		}
		return true
	})
	if !ok || !hasEvent || f.Event == "" {
		return Frame{}, false
	}
	if data != nil {
		f.Data = bytes.Clone(data)
	}
	return f, true
}

// members calls f with the key and raw value of each member of the JSON
// object b, which is valid JSON, until f returns false. It returns false
// then, or for a key with an escape or not valid UTF-8.
func members(b []byte, f func(key, value []byte) bool) bool {
	i := 1
	for {
		i = skipSpace(b, i)
		if b[i] == '}' {
			return true
		}
		key, end, ok := plainString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // the colon
		vend := valueEnd(b, i)
		if !f(key, b[i:vend]) {
			return false
		}
		i = skipSpace(b, vend)
		if b[i] == ',' {
			i++
		}
	}
}

// plainValue is the content of a JSON string value that plainString reads.
func plainValue(value []byte) (string, bool) {
	s, _, ok := plainString(value, 0)
	return string(s), ok
}

// skipSpace skips JSON white space from i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the content of the JSON string at b[i] and the index
// after it, when it has no escape and is valid UTF-8 (it then reads as
// written). b is valid JSON.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if b[i] != '"' {
		return nil, 0, false
	}
	end := bytes.IndexByte(b[i+1:], '"')
	s := b[i+1 : i+1+end]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return nil, 0, false
	}
	return s, i + end + 2, true
}

// valueEnd returns the index just after the JSON value at b[i], in valid JSON.
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// asciiFold reports whether key, ASCII, equals name (lower case ASCII) but
// for case.
func asciiFold(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// SubscribeData is the data of pusher:subscribe. Positions, Resume, Rewind and
// SocketIDs are Herald's replay extension.
type SubscribeData struct {
	Channel     string   `json:"channel"`
	Auth        string   `json:"auth,omitempty"`
	ChannelData string   `json:"channel_data,omitempty"`
	Positions   bool     `json:"positions,omitempty"`
	Resume      string   `json:"resume,omitempty"`
	Rewind      *int     `json:"rewind,omitempty"`
	SocketIDs   []string `json:"socket_ids,omitempty"`
}

// SigninData is the data of pusher:signin.
type SigninData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// DecodeData parses the data of a pusher:* frame into v. pusher-js sends it as
// an object; some clients send a JSON string holding the object, which is
// accepted too.
func DecodeData(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return fmt.Errorf("%w: no data", ErrMalformed)
	}
	if sd, ok := v.(*SubscribeData); ok && raw[0] == '{' && scanSubscribeData(raw, sd) {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		raw = json.RawMessage(s)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: data: %v", ErrMalformed, err)
	}
	return nil
}

// scanSubscribeData reads the data of a subscribe with only "channel",
// "auth" and "channel_data" strings that read as written (what pusher-js
// sends) into d, as encoding/json would, without its reflection; false
// leaves d as it was, for encoding/json.
func scanSubscribeData(raw []byte, d *SubscribeData) bool {
	if !json.Valid(raw) {
		return false
	}
	out := *d
	ok := members(raw, func(key, value []byte) bool {
		var field *string
		switch {
		case asciiFold(key, "channel"):
			field = &out.Channel
		case asciiFold(key, "auth"):
			field = &out.Auth
		case asciiFold(key, "channel_data"):
			field = &out.ChannelData
		default:
			return false
		}
		s, ok := plainValue(value)
		*field = s
		return ok
	})
	if ok {
		*d = out
	}
	return ok
}

// Server frames. The fixed ones are built by hand: they are hot or tiny.

// ConnectionEstablished is the first frame on every connection.
func ConnectionEstablished(socketID string, activityTimeoutSeconds int) []byte {
	data := `{"socket_id":"` + socketID + `","activity_timeout":` + strconv.Itoa(activityTimeoutSeconds) + `}`
	return EventFrame(EventConnectionEstablished, "", data, nil)
}

// Pong answers pusher:ping.
var Pong = []byte(`{"event":"pusher:pong","data":"{}"}`)

// Ping is sent by the server to an idle client.
var Ping = []byte(`{"event":"pusher:ping","data":"{}"}`)

// ErrorFrame is pusher:error. Its data is an object, not a string. A zero
// code is written as null, as Pusher does for refused client events.
func ErrorFrame(code int, message string) []byte {
	var b strings.Builder
	b.WriteString(`{"event":"pusher:error","data":{"code":`)
	if code == 0 {
		b.WriteString("null")
	} else {
		b.WriteString(strconv.Itoa(code))
	}
	b.WriteString(`,"message":`)
	b.Write(jsonString(message))
	b.WriteString(`}}`)
	return []byte(b.String())
}

// SubscriptionError is pusher:subscription_error for one channel.
func SubscriptionError(channel, typ, message string, status int) []byte {
	data, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{typ, message, status})
	var b bytes.Buffer
	b.WriteString(`{"event":"pusher:subscription_error","channel":`)
	b.Write(jsonString(channel))
	b.WriteString(`,"data":`)
	b.Write(data)
	b.WriteString(`}`)
	return b.Bytes()
}

// EventFrame encodes {"event","channel","data"} with data written as a JSON
// string, as Pusher sends it; extra, when not nil, is appended as further
// top-level members (for example `"user_id":"7"` or `"position":"…"`), raw.
func EventFrame(event, channel, data string, extra []byte) []byte {
	b := make([]byte, 0, len(event)+len(channel)+len(data)+len(extra)+48)
	b = append(b, `{"event":`...)
	b = appendJSONString(b, event)
	if channel != "" {
		b = append(b, `,"channel":`...)
		b = appendJSONString(b, channel)
	}
	b = append(b, `,"data":`...)
	b = appendJSONString(b, data)
	if len(extra) > 0 {
		b = append(b, ',')
		b = append(b, extra...)
	}
	return append(b, '}')
}

func jsonString(s string) []byte { return appendJSONString(nil, s) }

// appendJSONString writes s as a JSON string with the same escaping as
// encoding/json (HTML-safe), without its allocations.
func appendJSONString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s)
	return append(b, enc...)
}
