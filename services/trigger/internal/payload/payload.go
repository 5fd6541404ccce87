// Package payload parses and checks the bodies of the trigger API's publish
// requests: POST /apps/{id}/events and POST /apps/{id}/batch_events.
package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/herald-ws/herald/shared/protocol"
)

// Pusher's limits on one request.
const (
	MaxChannels = 100 // channels of one event
	MaxBatch    = 10  // events of one batch
)

// Event is one checked event, ready to publish on each of its channels.
type Event struct {
	Name     string
	Data     string
	Channels []string // valid, distinct, 1 to MaxChannels
	SocketID string   // "" or a valid socket id
	Info     string   // attributes asked for in the answer, as sent
}

// Error is a refused body and the HTTP status it answers with.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

func badRequest(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// rawEvent is the body of /events and one item of a batch. Data stays raw so
// that a non-string can be told apart from a missing one.
type rawEvent struct {
	Name     *string         `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channels []string        `json:"channels"`
	Channel  string          `json:"channel"`
	SocketID string          `json:"socket_id"`
	Info     string          `json:"info"`

	// data is Data decoded, when scanEvent read it (dataScanned).
	data        string
	dataScanned bool
}

// ParseEvent reads the body of POST /apps/{id}/events: {name, data,
// channels | channel, socket_id?, info?}. maxDataBytes bounds the data
// (413 beyond it).
func ParseEvent(body []byte, maxDataBytes int) (Event, error) {
	raw, ok := scanEvent(body)
	if !ok {
		raw = rawEvent{}
		if err := decode(body, &raw); err != nil {
			return Event{}, err
		}
	}
	channels := raw.Channels
	if len(channels) == 0 && raw.Channel != "" {
		channels = []string{raw.Channel}
	}
	return check(raw, channels, maxDataBytes, "")
}

// ParseBatch reads the body of POST /apps/{id}/batch_events: {batch:[{name,
// data, channel, socket_id?, info?}, …]}, 1 to MaxBatch events of one
// channel each.
func ParseBatch(body []byte, maxDataBytes int) ([]Event, error) {
	var raw struct {
		Batch []rawEvent `json:"batch"`
	}
	if err := decode(body, &raw); err != nil {
		return nil, err
	}
	switch {
	case len(raw.Batch) == 0:
		return nil, badRequest("batch is missing or empty")
	case len(raw.Batch) > MaxBatch:
		return nil, badRequest("batch holds %d events, more than %d", len(raw.Batch), MaxBatch)
	}
	evs := make([]Event, 0, len(raw.Batch))
	for i, r := range raw.Batch {
		var channels []string
		if r.Channel != "" {
			channels = []string{r.Channel}
		}
		ev, err := check(r, channels, maxDataBytes, fmt.Sprintf("batch[%d]: ", i))
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

func decode(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return badRequest("body is not a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest("field %s has the wrong type: JSON %s", te.Field, te.Value)
		}
		return badRequest("body is not valid JSON: %v", err)
	}
	return nil
}

func check(raw rawEvent, channels []string, maxDataBytes int, where string) (Event, error) {
	if raw.Name == nil {
		return Event{}, badRequest("%smissing event name", where)
	}
	if err := protocol.ValidateEventName(*raw.Name); err != nil {
		return Event{}, badRequest("%s%v", where, err)
	}
	ev := Event{Name: *raw.Name, SocketID: raw.SocketID, Info: raw.Info}

	// Pusher takes data as a string: the SDKs JSON-encode objects first.
	data := bytes.TrimSpace(raw.Data)
	if len(data) == 0 {
		return Event{}, badRequest("%smissing data", where)
	}
	if data[0] != '"' {
		return Event{}, badRequest("%sdata must be a string (JSON-encode objects first)", where)
	}
	if raw.dataScanned {
		ev.Data = raw.data
	} else if plain, ok := unquote(data); ok {
		ev.Data = plain
	} else if err := json.Unmarshal(data, &ev.Data); err != nil {
		return Event{}, badRequest("%sdata is not a valid JSON string", where)
	}
	if len(ev.Data) > maxDataBytes {
		return Event{}, &Error{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("%sevent data is %d bytes, over the limit of %d", where, len(ev.Data), maxDataBytes)}
	}

	switch {
	case len(channels) == 0:
		return Event{}, badRequest("%smissing channel", where)
	case len(channels) > MaxChannels:
		return Event{}, badRequest("%sevent goes to %d channels, more than %d", where, len(channels), MaxChannels)
	}
	ev.Channels = make([]string, 0, len(channels))
	var seen map[string]bool // only for several channels: most events have one
	if len(channels) > 1 {
		seen = make(map[string]bool, len(channels))
	}
	for _, ch := range channels {
		if err := protocol.ValidateChannel(ch); err != nil {
			return Event{}, badRequest("%s%v", where, err)
		}
		// A channel named twice gets the event once, as on Pusher.
		if !seen[ch] {
			if seen != nil {
				seen[ch] = true
			}
			ev.Channels = append(ev.Channels, ch)
		}
	}

	if ev.SocketID != "" && !ValidSocketID(ev.SocketID) {
		return Event{}, badRequest("%ssocket_id %q is not of the form 123.456", where, ev.SocketID)
	}
	return ev, nil
}

// unquote decodes a JSON string literal in one pass when it holds only
// the short escapes (\" \\ \/ \b \f \n \r \t) and valid UTF-8: the data
// of a Laravel event is a JSON-encoded object, a string full of \" and
// \/. ok is false when json.Unmarshal must decide (\u escapes, invalid
// UTF-8, anything unexpected).
func unquote(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	body := lit[1 : len(lit)-1]
	if !utf8.Valid(body) {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '"' || c < 0x20:
			return "", false
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		if i++; i == len(body) {
			return "", false
		}
		switch body[i] {
		case '"', '\\', '/':
			b.WriteByte(body[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			return "", false
		}
	}
	return b.String(), true
}

// ValidSocketID reports whether s matches ^\d+\.\d+$.
func ValidSocketID(s string) bool {
	dot := -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && dot < 0:
			dot = i
		default:
			return false
		}
	}
	return dot > 0 && dot < len(s)-1
}
