package state

import (
	"maps"
	"slices"
	"strings"

	"github.com/herald-ws/herald/shared/presence"
)

// UserKey names one user of one app.
type UserKey struct{ App, UserID string }

// UserChange is a user's first signed-in socket on any gateway (Online) or
// its last one gone.
type UserChange struct {
	UserKey
	Online bool
}

// user is a signed-in user: its sockets on every gateway.
type user struct {
	seq   uint64
	conns map[presence.Conn]struct{}
}

func (s *State) initUsers() {
	s.users = map[UserKey]*user{}
	s.userConns = map[presence.Conn]UserKey{}
	s.usersByGateway = map[string]map[presence.Conn]struct{}{}
	s.dirtyUsers = map[UserKey]struct{}{}
}

// touchUser returns the user for an operation at seq, creating it, or nil
// when the user has seen a later operation. The same seq passes: a snapshot
// or a removal changes several sockets of one user at one seq, and a single
// operation applied again finds its socket already in or out.
func (s *State) touchUser(k UserKey, seq uint64) *user {
	u := s.users[k]
	if u == nil {
		u = &user{conns: map[presence.Conn]struct{}{}}
		s.users[k] = u
	}
	if seq < u.seq {
		return nil
	}
	u.seq = seq
	s.dirtyUsers[k] = struct{}{}
	return u
}

func (s *State) signin(seq uint64, gw string, app, socket, uid string, fx *Effects) {
	c := presence.Conn{Gateway: gw, SocketID: socket}
	if old, ok := s.userConns[c]; ok {
		if old == (UserKey{app, uid}) {
			return
		}
		// Signed in again as another user.
		s.signout(seq, gw, old.App, socket, fx)
	}
	k := UserKey{app, uid}
	u := s.touchUser(k, seq)
	if u == nil {
		return
	}
	u.conns[c] = struct{}{}
	s.userConns[c] = k
	byGw := s.usersByGateway[gw]
	if byGw == nil {
		byGw = map[presence.Conn]struct{}{}
		s.usersByGateway[gw] = byGw
	}
	byGw[c] = struct{}{}
	if len(u.conns) == 1 {
		fx.Users = append(fx.Users, UserChange{k, true})
	}
}

func (s *State) signout(seq uint64, gw string, app, socket string, fx *Effects) {
	c := presence.Conn{Gateway: gw, SocketID: socket}
	k, ok := s.userConns[c]
	if !ok || k.App != app {
		return
	}
	u := s.touchUser(k, seq)
	if u == nil {
		return
	}
	delete(u.conns, c)
	delete(s.userConns, c)
	delete(s.usersByGateway[gw], c)
	if len(u.conns) == 0 {
		delete(s.users, k)
		fx.Users = append(fx.Users, UserChange{k, false})
	}
}

// replaceUsers makes a gateway's signed-in sockets those of list (nil for a
// gateway gone).
func (s *State) replaceUsers(seq uint64, gw string, list []presence.SignedIn, fx *Effects) {
	want := make(map[presence.Conn]presence.SignedIn, len(list))
	for _, si := range list {
		want[presence.Conn{Gateway: gw, SocketID: si.SocketID}] = si
	}
	// Sockets that went or changed user first, then the new ones, each in a
	// fixed order so that replays produce the same changes.
	cmp := func(a, b presence.Conn) int { return strings.Compare(a.SocketID, b.SocketID) }
	for _, c := range slices.SortedFunc(maps.Keys(s.usersByGateway[gw]), cmp) {
		k := s.userConns[c]
		if si, ok := want[c]; !ok || si.App != k.App || si.UserID != k.UserID {
			s.signout(seq, gw, k.App, c.SocketID, fx)
		}
	}
	for _, c := range slices.SortedFunc(maps.Keys(want), cmp) {
		si := want[c]
		s.signin(seq, gw, si.App, si.SocketID, si.UserID, fx)
	}
	if len(s.usersByGateway[gw]) == 0 {
		delete(s.usersByGateway, gw)
	}
}

// Online returns which of ids have a signed-in socket in app, in the order
// given.
func (s *State) Online(app string, ids []string) []string {
	var out []string
	for _, id := range ids {
		if u := s.users[UserKey{app, id}]; u != nil && len(u.conns) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// LoadUser adds a persisted signed-in user. Use it on an empty state, before
// Apply.
func (s *State) LoadUser(st presence.UserState) {
	k := UserKey{st.App, st.UserID}
	u := &user{seq: st.Seq, conns: make(map[presence.Conn]struct{}, len(st.Conns))}
	for _, c := range st.Conns {
		u.conns[c] = struct{}{}
		s.userConns[c] = k
		byGw := s.usersByGateway[c.Gateway]
		if byGw == nil {
			byGw = map[presence.Conn]struct{}{}
			s.usersByGateway[c.Gateway] = byGw
		}
		byGw[c] = struct{}{}
	}
	if len(u.conns) > 0 {
		s.users[k] = u
	}
}

func (u *user) persisted(k UserKey) presence.UserState {
	st := presence.UserState{App: k.App, UserID: k.UserID, Seq: u.seq}
	st.Conns = slices.SortedFunc(maps.Keys(u.conns), func(a, b presence.Conn) int {
		if c := strings.Compare(a.Gateway, b.Gateway); c != 0 {
			return c
		}
		return strings.Compare(a.SocketID, b.SocketID)
	})
	return st
}
