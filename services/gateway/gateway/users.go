package gateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/herald-ws/herald/services/gateway/internal/session"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// terminateMessage is what a connection closed by terminate_connections
// reads: 4009 is in pusher-js's range that does not reconnect.
const terminateMessage = "Connection terminated by the server"

type userKey struct{ app, user string }

// sessionSets are sets of connections by user: the connections signed in
// as each user, or those watching each.
type sessionSets map[userKey]map[*session.Session]struct{}

func (m sessionSets) add(k userKey, s *session.Session) {
	set := m[k]
	if set == nil {
		set = map[*session.Session]struct{}{}
		m[k] = set
	}
	set[s] = struct{}{}
}

// remove takes s out of k's set, and the set out of m once empty.
func (m sessionSets) remove(k userKey, s *session.Session) {
	if set := m[k]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// userIndex finds the signed-in connections of a user on this gateway, and
// the watchers of each user (watchlist.go).
type userIndex struct {
	mu        sync.Mutex
	byUser    sessionSets
	bySession map[*session.Session]userKey
	sub       *nats.Subscription

	watchlists
}

func newUserIndex() *userIndex {
	return &userIndex{
		byUser:     sessionSets{},
		bySession:  map[*session.Session]userKey{},
		watchlists: newWatchlists(),
	}
}

// SignedIn records that s signed in as userID, in place of any former user,
// watching the users of watchlist.
func (u *userIndex) SignedIn(s *session.Session, appID, userID string, watchlist []string) {
	u.mu.Lock()
	u.dropLocked(s)
	k := userKey{appID, userID}
	u.byUser.add(k, s)
	u.bySession[s] = k
	u.watchLocked(s, appID, watchlist)
	u.mu.Unlock()
	u.signedIn(s, appID, userID, watchlist)
}

// drop forgets s, once its connection has ended.
func (u *userIndex) drop(s *session.Session) {
	u.mu.Lock()
	k, signed := u.bySession[s]
	u.dropLocked(s)
	u.mu.Unlock()
	if signed && u.state != nil {
		u.state.SignOut(k.app, s.SocketID())
	}
}

func (u *userIndex) dropLocked(s *session.Session) {
	u.unwatchLocked(s)
	k, ok := u.bySession[s]
	if !ok {
		return
	}
	delete(u.bySession, s)
	u.byUser.remove(k, s)
}

// sessions returns the connections signed in as userID of app appID.
func (u *userIndex) sessions(appID, userID string) []*session.Session {
	u.mu.Lock()
	defer u.mu.Unlock()
	set := u.byUser[userKey{appID, userID}]
	list := make([]*session.Session, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	return list
}

// startUsers listens for every app's terminate_connections requests.
func (g *Gateway) startUsers(ctx context.Context) error {
	sub, err := g.opt.NC.Subscribe(names.UserTerminateSubjects(), g.terminate)
	if err != nil {
		return fmt.Errorf("gateway: subscribe %s: %w", names.UserTerminateSubjects(), err)
	}
	g.users.sub = sub
	// A request published right after New returns must find this gateway;
	// through a reconnect the flush waits for NATS.
	if err := ensure.Wait(ctx, "subscribing to terminate_connections", g.opt.NC.FlushWithContext); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("gateway: subscribe %s: %w", names.UserTerminateSubjects(), err)
	}
	return nil
}

// stopUsers stops listening for terminate_connections requests.
func (g *Gateway) stopUsers() {
	g.users.stopWatchlists()
	if g.users.sub != nil {
		_ = g.users.sub.Unsubscribe()
	}
}

// terminate closes the connections of the user a terminate_connections
// request names.
func (g *Gateway) terminate(m *nats.Msg) {
	appID, err := names.ChannelFromSubject(m.Subject)
	if err != nil {
		g.log.Warn("bad terminate_connections subject", "subject", m.Subject, "err", err)
		return
	}
	for _, s := range g.users.sessions(appID, string(m.Data)) {
		s.Close(protocol.CodeUnauthorized, terminateMessage)
	}
}
