package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/herald-ws/herald/services/trigger/internal/publish"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/position"
	"github.com/herald-ws/herald/shared/protocol"
	"github.com/nats-io/nats.go/jetstream"
)

// infoPosition is the info attribute of Herald's replay extension: the
// channel's current position, which a server-rendered page hands to the
// JS companion so that it resumes from the moment the page was rendered.
const infoPosition = "position"

// channel serves GET /apps/{id}/channels/{name}?info=…. Attributes read
// from the events stream (position) are answered here; those of channel
// state (occupied, subscription_count, user_count, cache) belong to
// stateAttributes (channels.go).
func (a *API) channel(w http.ResponseWriter, r *http.Request, app *appconf.App, channel string) {
	if err := protocol.ValidateChannel(channel); err != nil {
		writeError(w, http.StatusBadRequest, "invalid channel name: "+err.Error())
		return
	}
	var state []string
	wantPosition := false
	for _, attr := range strings.Split(r.URL.Query().Get("info"), ",") {
		switch attr = strings.TrimSpace(attr); attr {
		case "":
		case infoPosition:
			wantPosition = true
		default:
			state = append(state, attr)
		}
	}
	out := map[string]any{}
	if len(state) > 0 || !wantPosition {
		if !a.stateAttributes(w, r, app, channel, state, out) {
			return
		}
	}
	if wantPosition {
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		defer cancel()
		p, err := a.currentPosition(ctx, app, channel)
		if err != nil {
			a.log.Debug("channel position unavailable", "app_id", app.ID, "channel", channel, "err", err)
			writeError(w, http.StatusServiceUnavailable, "position unavailable: event store unavailable: "+err.Error())
			return
		}
		out[infoPosition] = p.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// currentPosition is the channel's position now, by shared/position's rule:
// the stream's state (epoch, last sequence) first, then the channel's last
// stored event, so that an event stored in between lands after the
// position, never before it.
func (a *API) currentPosition(ctx context.Context, app *appconf.App, channel string) (position.Position, error) {
	if !a.nc.IsConnected() {
		return position.Position{}, publish.ErrNotConnected
	}
	s, err := a.pub.JetStream().Stream(ctx, names.EventsStream(app.ID))
	if err != nil {
		return position.Position{}, err
	}
	info := s.CachedInfo()
	epoch := position.EpochOf(info.Created)
	m, err := s.GetLastMsgForSubject(ctx, names.EventSubject(app.ID, channel))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return position.Position{Epoch: epoch, Seq: info.State.LastSeq, Time: info.State.LastTime}, nil
	case err != nil:
		return position.Position{}, err
	}
	return position.Position{Epoch: epoch, Seq: m.Sequence, Time: m.Time}, nil
}
