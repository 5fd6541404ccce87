package gateway

// Watchlists: a connection that signs in with user_data's "watchlist" gets
// pusher_internal:watchlist_events when those users come online (their first
// signed-in connection on any gateway) or go offline (their last one gone,
// a dead gateway's included), and at sign-in the ones already online. The
// presence service counts sign-ins (globalstate SignIn/SignOut) and tells of
// changes on one subject per app, which this gateway listens to while it
// has watchers of that app.

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/herald-ws/herald/services/gateway/internal/globalstate"
	"github.com/herald-ws/herald/services/gateway/internal/session"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go"
)

// watchlists is the part of userIndex that holds watchers; its maps are
// guarded by userIndex.mu.
type watchlists struct {
	nc    *nats.Conn
	state *globalstate.Client
	log   *slog.Logger

	watchers sessionSets // by watched user
	watching map[*session.Session][]userKey
	perApp   map[string]int // watching connections
	appSubs  map[string]*nats.Subscription
}

func newWatchlists() watchlists {
	return watchlists{
		log:      slog.New(slog.DiscardHandler),
		watchers: sessionSets{},
		watching: map[*session.Session][]userKey{},
		perApp:   map[string]int{},
		appSubs:  map[string]*nats.Subscription{},
	}
}

// startWatchlists links the index to NATS and the presence service.
func (g *Gateway) startWatchlists() {
	g.users.mu.Lock()
	g.users.nc, g.users.state, g.users.log = g.opt.NC, g.state, g.log
	g.users.mu.Unlock()
}

func (u *userIndex) watchLocked(s *session.Session, app string, list []string) {
	if len(list) == 0 || u.nc == nil {
		return
	}
	keys := make([]userKey, 0, len(list))
	for _, id := range list {
		k := userKey{app, id}
		u.watchers.add(k, s)
		keys = append(keys, k)
	}
	u.watching[s] = keys
	u.perApp[app]++
	if u.appSubs[app] != nil {
		return
	}
	sub, err := u.nc.Subscribe(names.UserStatusSubject(app), func(m *nats.Msg) { u.relay(app, m) })
	if err != nil {
		u.log.Warn("subscribing to user status", "app_id", app, "err", err)
		return
	}
	u.appSubs[app] = sub
}

func (u *userIndex) unwatchLocked(s *session.Session) {
	keys, ok := u.watching[s]
	if !ok {
		return
	}
	delete(u.watching, s)
	for _, k := range keys {
		u.watchers.remove(k, s)
	}
	app := keys[0].app
	if u.perApp[app]--; u.perApp[app] <= 0 {
		delete(u.perApp, app)
		if sub := u.appSubs[app]; sub != nil {
			_ = sub.Unsubscribe()
			delete(u.appSubs, app)
		}
	}
}

// signedIn tells the presence service of the sign-in and sends the watcher
// the users of its watchlist already online. The request waits for the
// service, so it runs apart from the connection's reader.
func (u *userIndex) signedIn(s *session.Session, app, userID string, watchlist []string) {
	if u.state == nil {
		return
	}
	u.state.SignIn(app, s.SocketID(), userID)
	if len(watchlist) == 0 {
		return
	}
	go func() {
		online, err := u.state.Online(context.Background(), app, watchlist)
		if err != nil {
			u.log.Warn("fetching online users", "app_id", app, "socket_id", s.SocketID(), "err", err)
			return
		}
		if len(online) > 0 {
			s.Send(watchlistFrame(presence.WatchlistEvent{Name: presence.Online, UserIDs: online}))
		}
	}()
}

// relay forwards one status change of an app's users to their watchers on
// this gateway, each with the users it watches.
func (u *userIndex) relay(app string, m *nats.Msg) {
	var ev presence.WatchlistEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil || (ev.Name != presence.Online && ev.Name != presence.Offline) {
		u.log.Warn("bad user status", "subject", m.Subject)
		return
	}
	u.mu.Lock()
	per := map[*session.Session][]string{}
	for _, id := range ev.UserIDs {
		for s := range u.watchers[userKey{app, id}] {
			per[s] = append(per[s], id)
		}
	}
	u.mu.Unlock()
	for s, ids := range per {
		s.Send(watchlistFrame(presence.WatchlistEvent{Name: ev.Name, UserIDs: ids}))
	}
}

// stopWatchlists stops listening for user status changes.
func (u *userIndex) stopWatchlists() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for app, sub := range u.appSubs {
		_ = sub.Unsubscribe()
		delete(u.appSubs, app)
	}
}

func watchlistFrame(evs ...presence.WatchlistEvent) []byte {
	b, _ := json.Marshal(struct {
		Events []presence.WatchlistEvent `json:"events"`
	}{evs})
	return protocol.EventFrame(protocol.EventWatchlistEvents, "", string(b), nil)
}
