package presence

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// Heartbeat is the value of a gateway's key in names.GatewaysBucket.
type Heartbeat struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	// Draining is set once the gateway started shutting down.
	Draining bool `json:"draining,omitempty"`
	// TTLMillis is the key's time to live as the gateway set it.
	TTLMillis int64 `json:"ttl_ms"`
}

// MembersRequest asks the presence service for a presence channel's members
// once it has applied the operation at OpSeq (the join the gateway just
// published).
type MembersRequest struct {
	App      string `json:"app"`
	Channel  string `json:"channel"`
	Gateway  string `json:"gw"`
	SocketID string `json:"socket_id"`
	OpSeq    uint64 `json:"op_seq"`
}

// Reply statuses.
const (
	// StatusOK: Members is the member list.
	StatusOK = "ok"
	// StatusLimit: the join at OpSeq was refused, the channel is full.
	StatusLimit = "limit"
	// StatusRefused: the join was not applied (the gateway is not
	// registered, or the request is malformed).
	StatusRefused = "refused"
)

// MembersReply answers a MembersRequest.
type MembersReply struct {
	Status string `json:"status"`
	// Members maps user_id to user_info (null when the user has none).
	Members map[string]json.RawMessage `json:"members,omitempty"`
	// Seq is the MembersStream sequence the list corresponds to: it
	// reflects every member event up to Seq and none after.
	Seq   uint64 `json:"seq"`
	Error string `json:"error,omitempty"`
}

// ResyncRequest asks gateways for a full snapshot.
type ResyncRequest struct {
	Reason string `json:"reason"`
}

// MemberEvent is one member_added or member_removed of a channel.
type MemberEvent struct {
	App     string
	Channel string
	// Event is protocol.EventMemberAdded or protocol.EventMemberRemoved.
	Event    string
	UserID   string
	UserInfo json.RawMessage
	// MsgID is the deterministic Nats-Msg-Id that stores it once.
	MsgID string
}

// Data is the Pusher data of the event: {"user_id":…,"user_info":…} for
// member_added, {"user_id":…} for member_removed.
func (e *MemberEvent) Data() []byte {
	v := struct {
		UserID   string          `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info,omitempty"`
	}{UserID: e.UserID}
	if e.Event == protocol.EventMemberAdded {
		v.UserInfo = e.UserInfo
	}
	b, _ := marshal(v) // cannot fail: a string and valid raw JSON
	return b
}

// Msg builds the message of e on its channel's member subject: the Pusher
// data in the body, the event name and user id in headers.
func (e *MemberEvent) Msg() *nats.Msg {
	m := nats.NewMsg(names.MemberEventSubject(e.App, e.Channel))
	m.Header.Set(names.HeaderEvent, e.Event)
	m.Header.Set(names.HeaderUserID, e.UserID)
	if e.MsgID != "" {
		m.Header.Set(names.HeaderNatsMsgID, e.MsgID)
	}
	m.Data = e.Data()
	return m
}

// LiveMemberEvent is a member event as a gateway receives it on
// names.MemberLiveSubject.
type LiveMemberEvent struct {
	Event    string
	UserID   string
	UserInfo json.RawMessage
	// Data is the Pusher data, as stored.
	Data []byte
	// Seq is its MembersStream sequence; LastSeq that of the channel's
	// previous member event (0 when none is stored any more).
	Seq, LastSeq uint64
}

// ParseLiveMemberEvent reads a republished member event.
func ParseLiveMemberEvent(m *nats.Msg) (LiveMemberEvent, error) {
	ev := LiveMemberEvent{Event: m.Header.Get(names.HeaderEvent), UserID: m.Header.Get(names.HeaderUserID), Data: m.Data}
	if ev.Event != protocol.EventMemberAdded && ev.Event != protocol.EventMemberRemoved {
		return ev, fmt.Errorf("%w: member event %q", ErrBadOp, ev.Event)
	}
	var err error
	if ev.Seq, err = strconv.ParseUint(m.Header.Get(names.HeaderNatsSequence), 10, 64); err != nil {
		return ev, fmt.Errorf("%w: member event without a sequence", ErrBadOp)
	}
	if s := m.Header.Get(names.HeaderNatsLastSequence); s != "" {
		if ev.LastSeq, err = strconv.ParseUint(s, 10, 64); err != nil {
			return ev, fmt.Errorf("%w: member event last sequence %q", ErrBadOp, s)
		}
	}
	if ev.Event == protocol.EventMemberAdded {
		var d struct {
			UserInfo json.RawMessage `json:"user_info"`
		}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return ev, fmt.Errorf("%w: member event data: %v", ErrBadOp, err)
		}
		ev.UserInfo = d.UserInfo
	}
	return ev, nil
}

// CountData is the body of a message on names.SubscriptionCountSubject and
// the Pusher data of pusher_internal:subscription_count.
func CountData(n int) []byte {
	return []byte(`{"subscription_count":` + strconv.Itoa(n) + `}`)
}

// ParseCountData reads CountData.
func ParseCountData(b []byte) (int, error) {
	var d struct {
		N *int `json:"subscription_count"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.N == nil {
		return 0, fmt.Errorf("%w: subscription count %q", ErrBadOp, b)
	}
	return *d.N, nil
}

// Conn is one connection of a presence member.
type Conn struct {
	Gateway  string `json:"gw"`
	SocketID string `json:"socket_id"`
}

// MemberState is one member of a presence channel in ChannelState.
type MemberState struct {
	UserInfo json.RawMessage `json:"user_info,omitempty"`
	Conns    []Conn          `json:"conns,omitempty"`
	// GraceUntil (Unix milliseconds) is set on a member whose last
	// connection was on a draining gateway: it stays a member until then,
	// and member_removed goes out only if it has not come back.
	GraceUntil int64 `json:"grace_until,omitempty"`
}

// ChannelState is the value of a channel's key in names.PresenceStateBucket.
// Only occupied channels have a key.
type ChannelState struct {
	App     string `json:"app"`
	Channel string `json:"channel"`
	// Seq is the PresenceOpsStream sequence of the last operation applied
	// to the channel: an operation redelivered with Seq at or below it
	// changes nothing.
	Seq uint64 `json:"seq"`

	SubscriptionCount int `json:"subscription_count"`
	UserCount         int `json:"user_count,omitempty"`
	// Gateways counts the subscriptions of a non-presence channel per
	// gateway.
	Gateways map[string]int `json:"gateways,omitempty"`
	// Members of a presence channel by user id.
	Members map[string]MemberState `json:"members,omitempty"`
}

// GatewayState is the presence service's record of one gateway in
// names.PresenceStateBucket.
type GatewayState struct {
	ID string `json:"id"`
	// Reg is the heartbeat revision of its current registration.
	Reg      uint64 `json:"reg"`
	Draining bool   `json:"draining,omitempty"`
	// Removed gateways are tombstones: their late operations are ignored
	// until they register again with a snapshot.
	Removed   bool      `json:"removed,omitempty"`
	RemovedAt time.Time `json:"removed_at,omitzero"`
	Seq       uint64    `json:"seq"`
}

// Meta is the value of names.PresenceMetaKey.
type Meta struct {
	// Instance and Term name the writer; each new term writes Meta first,
	// which fences out every earlier writer.
	Instance string    `json:"instance"`
	Term     uint64    `json:"term"`
	Since    time.Time `json:"since"`
	// Applied is the highest PresenceOpsStream sequence whose effects are
	// persisted: every acknowledged operation is at or below it.
	Applied uint64 `json:"applied"`
	// OpsEpoch identifies the PresenceOpsStream that Applied and every
	// sequence in the state refer to (its creation time).
	OpsEpoch string `json:"ops_epoch,omitempty"`
}

// Lock is the value of names.PresenceLeaderKey.
type Lock struct {
	Instance string    `json:"instance"`
	Since    time.Time `json:"since"`
}
