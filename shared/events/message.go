package events

import (
	"github.com/herald-ws/herald/shared/names"
	"github.com/nats-io/nats.go"
)

// Event is one channel event as the trigger API publishes it. The data is
// the message body; name and exclusion travel in headers, so a gateway can
// build the frame without decoding an envelope.
type Event struct {
	AppID   string
	Channel string
	Name    string
	Data    string
	// ExcludeSocketID is the socket that must not receive it (Laravel's
	// toOthers()).
	ExcludeSocketID string
	// MsgID dedupes a message sent twice within DuplicateWindow: the
	// trigger API sets one on every event, from the caller's idempotency
	// key or unique, never from the content (two identical events are two
	// events).
	MsgID string
}

// Msg builds the NATS message for e on its events subject.
func (e Event) Msg() *nats.Msg {
	// The header values share one array (the header names are canonical
	// already): a publish builds a message for every event.
	vals := make([]string, 1, 3)
	vals[0] = e.Name
	h := make(nats.Header, 3)
	h[names.HeaderEvent] = vals[0:1:1]
	if e.ExcludeSocketID != "" {
		vals = append(vals, e.ExcludeSocketID)
		h[names.HeaderExclude] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if e.MsgID != "" {
		vals = append(vals, e.MsgID)
		h[names.HeaderNatsMsgID] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return &nats.Msg{Subject: names.EventSubject(e.AppID, e.Channel), Header: h, Data: []byte(e.Data)}
}

// ClientEvent is a client-* event relayed between gateways on core NATS.
type ClientEvent struct {
	AppID    string
	Channel  string
	Name     string
	Data     []byte // the raw JSON of the client's data, or a JSON string
	SocketID string // the sender, which never receives it
	UserID   string // on presence channels
}

// Msg builds the NATS message for a client event.
func (c ClientEvent) Msg() *nats.Msg {
	m := nats.NewMsg(names.ClientEventSubject(c.AppID, c.Channel))
	m.Header.Set(names.HeaderEvent, c.Name)
	m.Header.Set(names.HeaderExclude, c.SocketID)
	if c.UserID != "" {
		m.Header.Set(names.HeaderUserID, c.UserID)
	}
	m.Data = c.Data
	return m
}
