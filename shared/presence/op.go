package presence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// Kind names an operation.
type Kind string

// Operations in PresenceOpsStream.
const (
	// Join: one socket subscribed to one channel.
	Join Kind = "join"
	// Leave: one socket left one channel (unsubscribe or disconnect).
	Leave Kind = "leave"
	// Snapshot: one part of a gateway's full set of subscriptions; the
	// part with Last set completes it and replaces that gateway's state.
	Snapshot Kind = "snapshot"
	// Drain: the gateway is shutting down for a restart; member_removed for
	// its users is held for the drain grace.
	Drain Kind = "drain"
	// Gone: the gateway's heartbeat ended; its connections are removed.
	// Published by the presence service itself.
	Gone Kind = "gone"
	// Signin: one socket signed in as a user (pusher:signin).
	Signin Kind = "signin"
	// Signout: one signed-in socket ended or signed in as someone else.
	Signout Kind = "signout"
	// Batch: several joins, leaves, sign-ins, sign-outs or drains of one
	// gateway in one message, applied in order (operations version 2).
	Batch Kind = "batch"
)

// OpsVersion is the version of the operations format: 2 added Batch. A
// presence service of version 1 drops a batch as a malformed operation, so
// the presence services are upgraded before the gateways.
const OpsVersion = 2

// Op is one operation on global channel state, as JSON in the body of a
// message on names.PresenceOpSubject(Gateway).
type Op struct {
	Op Kind `json:"op"`
	// Gateway is empty only on the operations of a Batch, which are the
	// batch's gateway's.
	Gateway string `json:"gw,omitempty"`

	// Join and Leave.
	App      string          `json:"app,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	SocketID string          `json:"socket_id,omitempty"`
	UserID   string          `json:"user_id,omitempty"`
	UserInfo json.RawMessage `json:"user_info,omitempty"`

	// Reg is a heartbeat revision in names.GatewaysBucket: on Snapshot,
	// that of the registration the snapshot belongs to; on Gone, one after
	// the registration that ended. A Gone with Reg not above the gateway's
	// current registration is stale and ignored.
	Reg uint64 `json:"reg,omitempty"`

	// Snapshot parts.
	SnapshotID string `json:"snap,omitempty"`
	Part       int    `json:"part,omitempty"`
	Last       bool   `json:"last,omitempty"`
	Subs       []Sub  `json:"subs,omitempty"`
	// Users lists the gateway's signed-in sockets, after Subs, in parts
	// like them.
	Users []SignedIn `json:"users,omitempty"`

	// Ops of a Batch, in the order they happened.
	Ops []Op `json:"ops,omitempty"`
}

// SignedIn is one signed-in socket of a snapshot.
type SignedIn struct {
	App      string `json:"app"`
	SocketID string `json:"socket_id"`
	UserID   string `json:"user_id"`
}

// Sub is one subscription of a snapshot.
type Sub struct {
	App      string          `json:"app"`
	Channel  string          `json:"channel"`
	SocketID string          `json:"socket_id"`
	UserID   string          `json:"user_id,omitempty"`
	UserInfo json.RawMessage `json:"user_info,omitempty"`
}

// Limits on what an operation may carry, so that one bad message cannot
// make the service hold unbounded state.
const (
	// MaxIDLength bounds gateway ids, socket ids and app ids.
	MaxIDLength = 128
	// MaxUserIDLength bounds user ids beyond any app's configured limit.
	MaxUserIDLength = 1024
	// MaxUserInfoBytes bounds user info beyond any app's configured limit.
	MaxUserInfoBytes = 64 << 10
	// MaxBatchOps bounds the operations of one Batch.
	MaxBatchOps = 1024
)

// ErrBadOp reports an operation that does not follow the contract.
var ErrBadOp = errors.New("presence: malformed operation")

// DecodeOp parses and checks one operation. The operations of a Batch get
// the batch's gateway.
func DecodeOp(b []byte) (Op, error) {
	var op Op
	if err := json.Unmarshal(b, &op); err != nil {
		return Op{}, fmt.Errorf("%w: %v", ErrBadOp, err)
	}
	if op.Op == Batch {
		for i := range op.Ops {
			if op.Ops[i].Gateway == "" {
				op.Ops[i].Gateway = op.Gateway
			}
		}
	}
	if err := op.Validate(); err != nil {
		return Op{}, err
	}
	return op, nil
}

// Validate checks that op carries what its kind needs.
func (op *Op) Validate() error {
	if err := checkID("gw", op.Gateway); err != nil {
		return err
	}
	switch op.Op {
	case Join, Leave:
		s := Sub{App: op.App, Channel: op.Channel, SocketID: op.SocketID, UserID: op.UserID, UserInfo: op.UserInfo}
		if err := s.validate(op.Op == Join); err != nil {
			return err
		}
	case Snapshot:
		if op.SnapshotID == "" || len(op.SnapshotID) > MaxIDLength {
			return fmt.Errorf("%w: snapshot without a valid id", ErrBadOp)
		}
		if op.Part < 0 {
			return fmt.Errorf("%w: negative snapshot part", ErrBadOp)
		}
		for i := range op.Subs {
			if err := op.Subs[i].validate(true); err != nil {
				return fmt.Errorf("snapshot entry %d: %w", i, err)
			}
		}
		for i := range op.Users {
			if err := op.Users[i].validate(); err != nil {
				return fmt.Errorf("snapshot user %d: %w", i, err)
			}
		}
	case Signin:
		u := SignedIn{App: op.App, SocketID: op.SocketID, UserID: op.UserID}
		if err := u.validate(); err != nil {
			return err
		}
	case Signout:
		if err := checkID("app", op.App); err != nil {
			return err
		}
		if err := checkID("socket_id", op.SocketID); err != nil {
			return err
		}
	case Drain:
	case Gone:
		if op.Reg == 0 {
			return fmt.Errorf("%w: gone without a heartbeat revision", ErrBadOp)
		}
	case Batch:
		if len(op.Ops) == 0 || len(op.Ops) > MaxBatchOps {
			return fmt.Errorf("%w: batch of %d operations (1 to %d)", ErrBadOp, len(op.Ops), MaxBatchOps)
		}
		for i := range op.Ops {
			in := &op.Ops[i]
			switch {
			case in.Gateway != op.Gateway:
				return fmt.Errorf("%w: batch operation %d of another gateway", ErrBadOp, i)
			case in.Op != Join && in.Op != Leave && in.Op != Signin && in.Op != Signout && in.Op != Drain:
				return fmt.Errorf("%w: batch operation %d is a %q", ErrBadOp, i, in.Op)
			}
			if err := in.Validate(); err != nil {
				return fmt.Errorf("batch operation %d: %w", i, err)
			}
		}
	default:
		return fmt.Errorf("%w: unknown op %q", ErrBadOp, op.Op)
	}
	return nil
}

// validate checks one subscription; a joining presence subscription needs
// its user id.
func (s *Sub) validate(joining bool) error {
	if err := checkID("app", s.App); err != nil {
		return err
	}
	if err := checkID("socket_id", s.SocketID); err != nil {
		return err
	}
	if err := protocol.ValidateChannel(s.Channel); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOp, err)
	}
	if len(s.UserID) > MaxUserIDLength {
		return fmt.Errorf("%w: user_id longer than %d bytes", ErrBadOp, MaxUserIDLength)
	}
	if joining && IsPresence(s.Channel) && s.UserID == "" {
		return fmt.Errorf("%w: presence subscription without user_id", ErrBadOp)
	}
	if len(s.UserInfo) > 0 {
		if len(s.UserInfo) > MaxUserInfoBytes {
			return fmt.Errorf("%w: user_info larger than %d bytes", ErrBadOp, MaxUserInfoBytes)
		}
		if !json.Valid(s.UserInfo) {
			return fmt.Errorf("%w: user_info is not JSON", ErrBadOp)
		}
	}
	return nil
}

func (u *SignedIn) validate() error {
	if err := checkID("app", u.App); err != nil {
		return err
	}
	if err := checkID("socket_id", u.SocketID); err != nil {
		return err
	}
	if u.UserID == "" || len(u.UserID) > MaxUserIDLength {
		return fmt.Errorf("%w: user_id empty or longer than %d bytes", ErrBadOp, MaxUserIDLength)
	}
	return nil
}

func checkID(field, v string) error {
	if v == "" {
		return fmt.Errorf("%w: %s is empty", ErrBadOp, field)
	}
	if len(v) > MaxIDLength {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrBadOp, field, MaxIDLength)
	}
	return nil
}

// IsPresence reports a presence channel (presence-*, presence-cache-*):
// the only kind with members.
func IsPresence(channel string) bool {
	return protocol.ChannelKind(channel) == protocol.Presence
}

// BatchOf is the message body of ops, all of one gateway: the operation
// itself when there is one (what a presence service of version 1 reads too),
// a Batch otherwise.
func BatchOf(ops []Op) Op {
	if len(ops) == 1 {
		return ops[0]
	}
	b := Op{Op: Batch, Gateway: ops[0].Gateway, Ops: make([]Op, len(ops))}
	for i, op := range ops {
		op.Gateway = "" // the batch's
		b.Ops[i] = op
	}
	return b
}

// Msg builds the message of op on its gateway's subject. msgID, when set,
// becomes Nats-Msg-Id so that a retried publish is stored once.
func (op *Op) Msg(msgID string) (*nats.Msg, error) {
	b, err := marshal(op)
	if err != nil {
		return nil, fmt.Errorf("encoding %s operation: %w", op.Op, err)
	}
	m := nats.NewMsg(names.PresenceOpSubject(op.Gateway))
	m.Data = b
	if msgID != "" {
		m.Header.Set(names.HeaderNatsMsgID, msgID)
	}
	return m, nil
}

// marshal encodes v without escaping <, > and &: user info reaches clients
// as the app wrote it (compacted).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
