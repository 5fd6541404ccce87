package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
)

// Write is one key to persist; a nil Value deletes it.
type Write struct {
	Key   string
	Value []byte
}

// TakeDirty returns the writes that bring the bucket up to date with the
// state, and forgets them.
func (s *State) TakeDirty() ([]Write, error) {
	out := make([]Write, 0, len(s.dirtyChannels)+len(s.dirtyGateways))
	for _, k := range slices.SortedFunc(maps.Keys(s.dirtyChannels), compareKeys) {
		w := Write{Key: names.ChannelStateKey(k.App, k.Channel)}
		if ch := s.channels[k]; ch != nil {
			b, err := json.Marshal(ch.persisted())
			if err != nil {
				return nil, fmt.Errorf("encoding channel %s: %w", k.Channel, err)
			}
			w.Value = b
		}
		out = append(out, w)
	}
	for _, id := range slices.Sorted(maps.Keys(s.dirtyGateways)) {
		w := Write{Key: names.GatewayStateKey(id)}
		if gw := s.gateways[id]; gw != nil {
			b, err := json.Marshal(gw.GatewayState)
			if err != nil {
				return nil, fmt.Errorf("encoding gateway %s: %w", id, err)
			}
			w.Value = b
		}
		out = append(out, w)
	}
	for _, k := range slices.SortedFunc(maps.Keys(s.dirtyUsers), compareUsers) {
		w := Write{Key: names.UserStateKey(k.App, k.UserID)}
		if u := s.users[k]; u != nil {
			b, err := json.Marshal(u.persisted(k))
			if err != nil {
				return nil, fmt.Errorf("encoding user %s: %w", k.UserID, err)
			}
			w.Value = b
		}
		out = append(out, w)
	}
	clear(s.dirtyChannels)
	clear(s.dirtyGateways)
	clear(s.dirtyUsers)
	return out, nil
}

// Dirty reports whether anything waits to be persisted.
func (s *State) Dirty() bool {
	return len(s.dirtyChannels)+len(s.dirtyGateways)+len(s.dirtyUsers) > 0
}

func compareUsers(a, b UserKey) int {
	if c := strings.Compare(a.App, b.App); c != 0 {
		return c
	}
	return strings.Compare(a.UserID, b.UserID)
}

func (ch *channel) persisted() presence.ChannelState {
	st := presence.ChannelState{App: ch.App, Channel: ch.Channel, Seq: ch.seq, SubscriptionCount: ch.count}
	if ch.presence {
		st.UserCount = len(ch.members)
		st.Members = make(map[string]presence.MemberState, len(ch.members))
		for uid, m := range ch.members {
			ms := presence.MemberState{UserInfo: m.info}
			if !m.graceUntil.IsZero() {
				ms.GraceUntil = m.graceUntil.UnixMilli()
			}
			ms.Conns = slices.SortedFunc(maps.Keys(m.conns), func(a, b presence.Conn) int {
				if c := strings.Compare(a.Gateway, b.Gateway); c != 0 {
					return c
				}
				return strings.Compare(a.SocketID, b.SocketID)
			})
			st.Members[uid] = ms
		}
		return st
	}
	st.Gateways = make(map[string]int, len(ch.plain))
	for gw, p := range ch.plain {
		st.Gateways[gw] = p.n()
	}
	return st
}

// Load adds a persisted channel. Use it on an empty state, before Apply.
func (s *State) Load(st presence.ChannelState) {
	k := Key{st.App, st.Channel}
	ch := &channel{Key: k, presence: presence.IsPresence(st.Channel), seq: st.Seq, idx: wholeBatch}
	if ch.presence {
		ch.members = make(map[string]*member, len(st.Members))
		for uid, ms := range st.Members {
			m := &member{info: ms.UserInfo, conns: make(map[presence.Conn]struct{}, len(ms.Conns))}
			for _, c := range ms.Conns {
				m.conns[c] = struct{}{}
				s.index(c.Gateway, k)
			}
			if ms.GraceUntil != 0 {
				m.graceUntil = time.UnixMilli(ms.GraceUntil)
				s.graces[k] = struct{}{}
			}
			ch.members[uid] = m
		}
	} else {
		ch.plain = make(map[string]*plainSubs, len(st.Gateways))
		for gw, n := range st.Gateways {
			if n > 0 {
				ch.plain[gw] = &plainSubs{sockets: map[string]struct{}{}, anon: n}
				s.index(gw, k)
			}
		}
	}
	ch.count = ch.subscriptions()
	if ch.occupied() {
		s.channels[k] = ch
	}
}

// ResetSequences forgets the operation sequences recorded in the state, when
// the stream they numbered was replaced: the new stream's operations all
// apply, and snapshots put right what they cannot.
func (s *State) ResetSequences() {
	for k, ch := range s.channels {
		ch.seq = 0
		s.dirtyChannels[k] = struct{}{}
	}
	for id, gw := range s.gateways {
		gw.Seq = 0
		s.dirtyGateways[id] = struct{}{}
	}
	for k, u := range s.users {
		u.seq = 0
		s.dirtyUsers[k] = struct{}{}
	}
}

// LoadGateway adds a persisted gateway record.
func (s *State) LoadGateway(g presence.GatewayState) {
	s.gateways[g.ID] = &gateway{g}
}

// Members returns a presence channel's members: user id to user info.
func (s *State) Members(k Key) map[string]json.RawMessage {
	ch := s.channels[k]
	if ch == nil {
		return map[string]json.RawMessage{}
	}
	out := make(map[string]json.RawMessage, len(ch.members))
	for uid, m := range ch.members {
		out[uid] = m.info
	}
	return out
}

// Count returns a channel's subscription count.
func (s *State) Count(k Key) int {
	if ch := s.channels[k]; ch != nil {
		return ch.count
	}
	return 0
}

// Gateways returns the records of the gateways known, removed ones included.
func (s *State) Gateways() []presence.GatewayState {
	out := make([]presence.GatewayState, 0, len(s.gateways))
	for _, id := range slices.Sorted(maps.Keys(s.gateways)) {
		out = append(out, s.gateways[id].GatewayState)
	}
	return out
}

// Stats counts channels and subscriptions, for metrics.
func (s *State) Stats() (channels, subscriptions, members int) {
	for _, ch := range s.channels {
		channels++
		subscriptions += ch.count
		members += len(ch.members)
	}
	return channels, subscriptions, members
}
