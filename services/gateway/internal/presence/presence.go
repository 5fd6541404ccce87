// Package presence keeps the members of presence channels held by this
// gateway's connections. It is the local stand-in for a cluster-wide presence
// service: callers see only Join, Leave and Snapshot, and the events to send
// come back through the callbacks, so that a global implementation can take
// its place behind the same calls.
package presence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Member is one user of a presence channel.
type Member struct {
	UserID string
	// Info is the user_info the app signed, raw JSON; nil when absent.
	Info json.RawMessage
}

// Errors of Join and ParseChannelData.
var (
	// ErrInvalid: channel_data is not {"user_id":…, "user_info":…}.
	ErrInvalid = errors.New("presence: invalid channel_data")
	// ErrTooLarge: the user id or user info is over its limit.
	ErrTooLarge = errors.New("presence: member over a size limit")
	// ErrFull: the channel has the maximum number of members.
	ErrFull = errors.New("presence: channel is full")
)

// ParseChannelData reads a presence subscription's channel_data. A numeric
// user_id is kept as written ("42"); user_info may be any JSON value.
func ParseChannelData(data string, maxUserIDLength, maxInfoBytes int) (Member, error) {
	var raw struct {
		UserID   json.RawMessage `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}
	if err := json.Unmarshal([]byte(data), &raw); err != nil {
		return Member{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id, err := userID(raw.UserID)
	if err != nil {
		return Member{}, err
	}
	if len(id) > maxUserIDLength {
		return Member{}, fmt.Errorf("%w: user_id is longer than %d characters", ErrTooLarge, maxUserIDLength)
	}
	info := bytes.TrimSpace(raw.UserInfo)
	if len(info) > maxInfoBytes {
		return Member{}, fmt.Errorf("%w: user_info is larger than %d bytes", ErrTooLarge, maxInfoBytes)
	}
	if len(info) == 0 || string(info) == "null" {
		info = nil
	}
	return Member{UserID: id, Info: info}, nil
}

func userID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("%w: no user_id", ErrInvalid)
	}
	var id string
	switch {
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", fmt.Errorf("%w: user_id: %v", ErrInvalid, err)
		}
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return "", fmt.Errorf("%w: user_id %s is not a number", ErrInvalid, raw)
		}
		id = string(raw)
	default:
		return "", fmt.Errorf("%w: user_id must be a string or a number", ErrInvalid)
	}
	if id == "" {
		return "", fmt.Errorf("%w: user_id is empty", ErrInvalid)
	}
	return id, nil
}

// Store holds the presence channels of this gateway.
type Store struct {
	mu       sync.Mutex
	channels map[key]*channel
}

type key struct{ app, channel string }

type channel struct {
	mu   sync.Mutex // serialises Join and Leave on the channel, callbacks included
	refs int        // callers holding or waiting for mu; guarded by Store.mu

	order   []string // user ids in join order
	users   map[string]*user
	sockets map[string]string // socket id → user id
}

type user struct {
	info    json.RawMessage
	sockets int
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{channels: map[key]*channel{}} }

func (s *Store) acquire(k key) *channel {
	s.mu.Lock()
	c := s.channels[k]
	if c == nil {
		c = &channel{users: map[string]*user{}, sockets: map[string]string{}}
		s.channels[k] = c
	}
	c.refs++
	s.mu.Unlock()
	c.mu.Lock()
	return c
}

func (s *Store) release(k key, c *channel) {
	c.mu.Unlock()
	s.mu.Lock()
	c.refs--
	// With no reference left nobody can be changing c: reading it here is
	// ordered after the last change by s.mu.
	if c.refs == 0 && len(c.sockets) == 0 {
		delete(s.channels, k)
	}
	s.mu.Unlock()
}

// Join makes socketID a connection of member m on a channel that admits at
// most maxMembers users. Under the channel's lock it calls then with the
// data of pusher_internal:subscription_succeeded (the members, m included)
// and whether m is a new member (so member_added is due); if then fails, the
// join is undone. Joining again with the same socket changes nothing.
func (s *Store) Join(appID, channelName, socketID string, m Member, maxMembers int,
	then func(succeeded []byte, added bool) error) error {
	k := key{appID, channelName}
	c := s.acquire(k)
	defer s.release(k, c)
	if _, ok := c.sockets[socketID]; ok {
		return then(c.snapshot(), false)
	}
	u := c.users[m.UserID]
	added := u == nil
	if added {
		if len(c.users) >= maxMembers {
			return fmt.Errorf("%w: %d members", ErrFull, maxMembers)
		}
		u = &user{info: m.Info}
		c.users[m.UserID] = u
		c.order = append(c.order, m.UserID)
	}
	u.sockets++
	c.sockets[socketID] = m.UserID
	if err := then(c.snapshot(), added); err != nil {
		c.leave(socketID)
		return err
	}
	return nil
}

// Leave removes socketID from a channel. Under the channel's lock it calls
// then with the member that left when it was the user's last connection
// (so member_removed is due), or nil.
func (s *Store) Leave(appID, channelName, socketID string, then func(removed *Member)) {
	k := key{appID, channelName}
	c := s.acquire(k)
	defer s.release(k, c)
	then(c.leave(socketID))
}

// Snapshot returns the data of subscription_succeeded for a channel.
func (s *Store) Snapshot(appID, channelName string) []byte {
	k := key{appID, channelName}
	c := s.acquire(k)
	defer s.release(k, c)
	return c.snapshot()
}

func (c *channel) leave(socketID string) *Member {
	id, ok := c.sockets[socketID]
	if !ok {
		return nil
	}
	delete(c.sockets, socketID)
	u := c.users[id]
	u.sockets--
	if u.sockets > 0 {
		return nil
	}
	delete(c.users, id)
	for i, v := range c.order {
		if v == id {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	return &Member{UserID: id, Info: u.info}
}

// snapshot is {"presence":{"ids":[…],"hash":{id:info},"count":n}}.
func (c *channel) snapshot() []byte {
	hash := make(map[string]json.RawMessage, len(c.users))
	for id, u := range c.users {
		hash[id] = u.info
	}
	var v struct {
		Presence struct {
			IDs   []string                   `json:"ids"`
			Hash  map[string]json.RawMessage `json:"hash"`
			Count int                        `json:"count"`
		} `json:"presence"`
	}
	v.Presence.IDs = append([]string{}, c.order...)
	v.Presence.Hash = hash
	v.Presence.Count = len(c.order)
	b, _ := json.Marshal(v) // infos are valid JSON: they came through json.Unmarshal
	return b
}

// AddedData is the data of pusher_internal:member_added.
func AddedData(m Member) []byte {
	b, _ := json.Marshal(struct {
		UserID   string          `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info,omitempty"`
	}{m.UserID, m.Info})
	return b
}

// RemovedData is the data of pusher_internal:member_removed.
func RemovedData(userID string) []byte {
	b, _ := json.Marshal(struct {
		UserID string `json:"user_id"`
	}{userID})
	return b
}
