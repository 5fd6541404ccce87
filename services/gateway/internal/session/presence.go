package session

// Global channel state, per subscription.
//
// Every subscription is joined in globalstate, so that the presence service
// counts it (occupancy, subscription counts, the HTTP API's channel
// queries). A presence subscription waits there for the member list of the
// whole installation before its subscription_succeeded.
//
// The hub subscription is made first, so that a client event sent by a
// member who just saw member_added for this user is not missed. Until the
// member list arrives, what the hub delivers for a presence channel waits in
// a gate (or, for a stream subscription, in the stream's own buffer), so that
// subscription_succeeded is the first frame of the channel.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/herald-ws/herald/services/gateway/internal/globalstate"
	"github.com/herald-ws/herald/services/gateway/internal/hub"
	"github.com/herald-ws/herald/services/gateway/internal/replay"
	"github.com/herald-ws/herald/shared/protocol"
)

// Errors of parseChannelData.
var (
	// errInvalidMember: channel_data is not {"user_id":…, "user_info":…}.
	errInvalidMember = errors.New("invalid channel_data")
	// errMemberTooLarge: the user id or user info is over the app's limit.
	errMemberTooLarge = errors.New("member over a size limit")
)

// member is the user of a presence subscription, as channel_data names it.
type member struct {
	UserID string
	// Info is the user_info the app signed, raw JSON; nil when absent.
	Info json.RawMessage
}

// parseChannelData reads a presence subscription's channel_data. A numeric
// user_id is kept as written ("42"); user_info may be any JSON value.
func parseChannelData(data string, maxUserIDLength, maxInfoBytes int) (member, error) {
	var raw struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(data), &raw); err != nil {
		return member{}, fmt.Errorf("%w: %v", errInvalidMember, err)
	}
	id, err := userID(raw.UserID)
	if err != nil {
		return member{}, err
	}
	if len(id) > maxUserIDLength {
		return member{}, fmt.Errorf("%w: user_id is longer than %d characters", errMemberTooLarge, maxUserIDLength)
	}
	info := bytes.TrimSpace(raw.UserInfo)
	if len(info) > maxInfoBytes {
		return member{}, fmt.Errorf("%w: user_info is larger than %d bytes", errMemberTooLarge, maxInfoBytes)
	}
	if len(info) == 0 || string(info) == "null" {
		info = nil
	}
	return member{UserID: id, Info: info}, nil
}

func userID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("%w: no user_id", errInvalidMember)
	}
	var id string
	switch {
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", fmt.Errorf("%w: user_id: %v", errInvalidMember, err)
		}
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return "", fmt.Errorf("%w: user_id %s is not a number", errInvalidMember, raw)
		}
		id = string(raw)
	default:
		return "", fmt.Errorf("%w: user_id must be a string or a number", errInvalidMember)
	}
	if id == "" {
		return "", fmt.Errorf("%w: user_id is empty", errInvalidMember)
	}
	return id, nil
}

// sender is where a subscription's frames go: the session, its gate or its
// stream.
type sender interface {
	Send(frame []byte) bool
}

// joinChannel subscribes to a channel without members: locally first
// (subscription_succeeded goes out at once, or from the stream subscription
// r when there is one), then globally, for counts.
func (s *Session) joinChannel(ch string, r *stream) error {
	var to sender = s
	if r != nil {
		to = r
	}
	if err := s.hubSubscribe(ch, emptyObject, r); err != nil {
		return err
	}
	_, err := s.state.Join(context.Background(), globalstate.JoinRequest{
		App: s.app.ID, Channel: ch, SocketID: s.id,
		Counts:  s.app.SubscriptionCount,
		Deliver: func(e *globalstate.Event) { to.Send(e.Frame()) },
	})
	switch {
	case err == nil, errors.Is(err, globalstate.ErrJoined):
	case errors.Is(err, globalstate.ErrClosed):
		// The gateway is shutting down: the socket is about to be closed.
	default:
		// The channel works on this gateway; only the global counts miss
		// this socket.
		s.logger().Warn("subscription not counted globally", "channel", ch, "err", err)
	}
	return nil
}

// joinPresence subscribes to a presence channel: it holds the channel's
// frames, joins globally, and sends subscription_succeeded with the members
// of every gateway once the presence service has answered. It returns the
// user id and, for a subscription without a stream (r nil), its gate (what
// the hub knows the subscription by).
func (s *Session) joinPresence(ch, channelData string, r *stream) (string, *gate, error) {
	if channelData == "" {
		return "", nil, fmt.Errorf("%w: presence channels need channel_data", errInvalidMember)
	}
	m, err := parseChannelData(channelData, s.app.MaxUserIDLength, s.app.MaxUserInfoBytes)
	if err != nil {
		return "", nil, err
	}
	var (
		g   *gate
		to  sender
		key hub.Subscriber = s
	)
	if r != nil {
		to = r
		err = s.hubSubscribe(ch, nil, r) // the stream holds what comes until it starts
	} else {
		g = &gate{s: s}
		to, key = g, g
		err = s.hub.Subscribe(s.app.ID, ch, g, nil)
	}
	if err != nil {
		return "", nil, err
	}

	// A client that goes away stops the wait for the presence service.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.conn.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err = s.state.Join(ctx, globalstate.JoinRequest{
		App: s.app.ID, Channel: ch, SocketID: s.id, UserID: m.UserID, UserInfo: m.Info,
		Ready: func(snap globalstate.Snapshot) {
			data := snap.Data(true)
			if r != nil {
				r.data = data // read by the stream once it starts, after Join
				return
			}
			g.open(succeeded(ch, data))
		},
		Deliver: func(e *globalstate.Event) { to.Send(e.Frame()) },
	})
	if err != nil {
		s.hub.Unsubscribe(s.app.ID, ch, key)
		if g != nil {
			g.discard()
		}
		return "", nil, err
	}
	return m.UserID, g, nil
}

// presenceError answers a subscribe that failed for a reason of presence
// with the type and status pusher-js reports; it reports whether err was
// one of those.
func (s *Session) presenceError(ch string, err error) bool {
	switch {
	case errors.Is(err, errInvalidMember):
		s.Send(protocol.SubscriptionError(ch, errAuth, err.Error(), 401))
	case errors.Is(err, errMemberTooLarge):
		s.Send(protocol.SubscriptionError(ch, errLimit, err.Error(), 403))
	case errors.Is(err, globalstate.ErrLimit):
		s.Send(protocol.SubscriptionError(ch, errLimit,
			fmt.Sprintf("The channel has its maximum of %d members", s.app.MaxPresenceMembers), 403))
	case errors.Is(err, globalstate.ErrUnavailable):
		select {
		case <-s.conn.Done(): // the client left while it waited
		default:
			s.logger().Warn("presence subscribe failed", "channel", ch, "err", err)
		}
		s.Send(protocol.SubscriptionError(ch, errServer, "The presence service is unavailable; try again later", 503))
	default:
		return false
	}
	return true
}

// confirm answers a subscribe to a channel the socket already has, without
// a second delivery: subscription_succeeded again, with the current members
// on a presence channel.
func (s *Session) confirm(ch string) {
	if protocol.ChannelKind(ch) != protocol.Presence {
		s.Send(succeeded(ch, emptyObject))
		return
	}
	s.state.Members(s.app.ID, ch, func(snap globalstate.Snapshot) {
		s.Send(succeeded(ch, snap.Data(true)))
	})
}

// hubKey is what the hub knows a subscription by.
func (sub *subscription) hubKey(s *Session) hub.Subscriber {
	if sub != nil && sub.gate != nil {
		return sub.gate
	}
	return s
}

// gate is a presence subscription's place in the hub: it holds the
// channel's frames until the member list is known, then passes them on.
type gate struct {
	s      *Session
	opened atomic.Bool // the member list is known: frames pass

	mu     sync.Mutex
	held   replay.Hold[[]byte] // frames until then
	closed bool                // discarded, or closed as a slow consumer
}

// SocketID is the subscribing socket (hub.Subscriber).
func (g *gate) SocketID() string { return g.s.id }

// Send passes a frame on, or holds it until the gate opens, within the send
// queue's bound (replay.Hold).
func (g *gate) Send(frame []byte) bool {
	if g.opened.Load() {
		return g.s.conn.Send(frame)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.opened.Load():
		return g.s.conn.Send(frame)
	case g.closed:
		return false
	}
	if !g.held.Add(frame, len(frame), g.s.conn.QueueLimit()) {
		g.s.conn.CloseSlow()
		g.closed = true
		return false
	}
	return true
}

// open sends first, then what was held, and lets later frames through.
func (g *gate) open(first []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.s.conn.Send(first)
	for _, f := range g.held.Take() {
		g.s.conn.Send(f)
	}
	g.opened.Store(true)
}

// discard drops what was held; nothing more passes.
func (g *gate) discard() {
	g.mu.Lock()
	g.closed = true
	g.held.Drop()
	g.mu.Unlock()
}
