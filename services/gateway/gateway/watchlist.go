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
	watching map[*session.Session]*watcher
	perApp   map[string]int // watching connections
	appSubs  map[string]*nats.Subscription
}

// watcher is what one watching connection was told. Its users already
// online at sign-in come from a request, their changes from the app's
// subject, and the two overlap: a user who signs in meanwhile is in both.
// Each change is told once: online to a connection not told so, offline to
// one told online.
type watcher struct {
	keys   []userKey
	online map[string]bool // told online
	// heard are the users a change reached before the answer at sign-in,
	// which then says nothing newer of them; nil once that answer is in.
	heard map[string]bool
	// unsure: the answer at sign-in never came, so an offline goes out
	// even to a connection not told the user was online.
	unsure bool
}

// tell records a change of userID for w and reports whether it is news to
// the connection. userIndex.mu is held.
func (w *watcher) tell(name, userID string) bool {
	if w.heard != nil {
		w.heard[userID] = true
	}
	if name == presence.Online {
		if w.online[userID] {
			return false
		}
		w.online[userID] = true
		return true
	}
	told := w.online[userID]
	delete(w.online, userID)
	return told || w.unsure
}

func newWatchlists() watchlists {
	return watchlists{
		log:      slog.New(slog.DiscardHandler),
		watchers: sessionSets{},
		watching: map[*session.Session]*watcher{},
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
	u.watching[s] = &watcher{keys: keys, online: map[string]bool{}, heard: map[string]bool{}}
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
	w, ok := u.watching[s]
	if !ok {
		return
	}
	delete(u.watching, s)
	for _, k := range w.keys {
		u.watchers.remove(k, s)
	}
	app := w.keys[0].app
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
	u.mu.Lock()
	w := u.watching[s]
	u.mu.Unlock()
	if len(watchlist) == 0 || w == nil {
		return
	}
	go func() {
		online, err := u.state.Online(context.Background(), app, watchlist)
		if err != nil {
			u.log.Warn("fetching online users", "app_id", app, "socket_id", s.SocketID(), "err", err)
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.watching[s] != w {
			return // signed in again, or gone
		}
		// Under the lock, so that frames go out in the order of the
		// changes they tell.
		var news []string
		for _, id := range online {
			if !w.heard[id] && w.tell(presence.Online, id) {
				news = append(news, id)
			}
		}
		w.heard, w.unsure = nil, err != nil
		if len(news) > 0 {
			s.Send(watchlistFrame(presence.WatchlistEvent{Name: presence.Online, UserIDs: news}))
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
	defer u.mu.Unlock()
	per := map[*session.Session][]string{}
	for _, id := range ev.UserIDs {
		for s := range u.watchers[userKey{app, id}] {
			if w := u.watching[s]; w != nil && w.tell(ev.Name, id) {
				per[s] = append(per[s], id)
			}
		}
	}
	// Under the lock, as the answer at sign-in is.
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
