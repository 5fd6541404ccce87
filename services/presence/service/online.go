package service

// Users online: answering which watched users are, and publishing who
// comes and goes.

import (
	"encoding/json"
	"errors"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats.go"
)

// online answers which watched users are online. Like member lists, only
// once the term has applied what was stored when it began.
func (t *term) online(m *nats.Msg) {
	var req presence.OnlineRequest
	rep := presence.OnlineReply{Status: presence.StatusOK}
	switch {
	case json.Unmarshal(m.Data, &req) != nil || req.App == "" || len(req.UserIDs) > presence.MaxWatchlist:
		rep.Status = presence.StatusRefused
	case t.applied < t.target:
		rep.Status = presence.StatusRefused
	default:
		rep.Online = t.st.Online(req.App, req.UserIDs)
	}
	b, err := json.Marshal(rep)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		t.svc.log.Warn("answering an online request", "subject", m.Subject, "err", err)
	}
}

// publishUsers tells gateways of users coming online and going offline, one
// message per run of changes of one app and kind. Core NATS: a watcher that
// misses one sees the truth at its next sign-in.
func (t *term) publishUsers(changes []state.UserChange) {
	for i := 0; i < len(changes); {
		j := i
		ev := presence.WatchlistEvent{Name: presence.Offline}
		if changes[i].Online {
			ev.Name = presence.Online
		}
		for ; j < len(changes) && changes[j].App == changes[i].App && changes[j].Online == changes[i].Online; j++ {
			ev.UserIDs = append(ev.UserIDs, changes[j].UserID)
		}
		b, err := json.Marshal(ev)
		if err == nil {
			err = t.svc.nc.Publish(names.UserStatusSubject(changes[i].App), b)
		}
		if err != nil {
			t.svc.log.Warn("publishing user status", "app_id", changes[i].App, "err", err)
		}
		i = j
	}
}
