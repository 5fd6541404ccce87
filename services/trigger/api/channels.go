package api

// Channel queries: GET /apps/{id}/channels, the channel-state attributes of
// GET /apps/{id}/channels/{name} (channel.go), GET
// /apps/{id}/channels/{name}/users and the info of POST events and
// batch_events. They read what the presence service persists
// (presence.Reader): global across gateways, and at most its flush interval
// behind the subscriptions it applied.
//
// Which attribute is allowed where follows Pusher's HTTP API: user_count
// only for presence channels (GET /channels only when filter_by_prefix
// limits it to them), cache only for cache channels; anything else is
// refused with 400. subscription_count is always answered: Herald counts
// every subscription whether or not the app relays counts to its clients.

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/herald-ws/herald/shared/protocol"
)

// Info attributes of channel state.
const (
	infoOccupied          = "occupied"
	infoUserCount         = "user_count"
	infoSubscriptionCount = "subscription_count"
	infoCache             = "cache"
)

// infoList splits an info parameter ("user_count,subscription_count").
func infoList(info string) []string {
	var out []string
	for _, attr := range strings.Split(info, ",") {
		if attr = strings.TrimSpace(attr); attr != "" {
			out = append(out, attr)
		}
	}
	return out
}

// channelAttrError says why attr cannot be asked of one channel, or "".
func channelAttrError(channel, attr string) string {
	switch attr {
	case infoOccupied, infoSubscriptionCount:
		return ""
	case infoUserCount:
		if !presence.IsPresence(channel) {
			return "info=user_count is only available for presence channels"
		}
		return ""
	case infoCache:
		if !protocol.IsCache(channel) {
			return "info=cache is only available for cache channels"
		}
		return ""
	}
	return fmt.Sprintf("unknown info attribute %q", attr)
}

// stateContext bounds one read of channel state.
func stateContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), queryTimeout)
}

// stateUnavailable answers a failed read of channel state.
func (a *API) stateUnavailable(w http.ResponseWriter, app *appconf.App, err error) {
	a.log.Debug("reading channel state failed", "app_id", app.ID, "err", err)
	writeError(w, http.StatusServiceUnavailable, "channel state unavailable: "+err.Error())
}

// channels serves GET /apps/{id}/channels?filter_by_prefix=…&info=…: the
// occupied channels, each with the attributes asked for.
func (a *API) channels(w http.ResponseWriter, r *http.Request, app *appconf.App) {
	q := r.URL.Query()
	prefix := q.Get("filter_by_prefix")
	attrs := infoList(q.Get("info"))
	for _, attr := range attrs {
		switch attr {
		case infoSubscriptionCount:
		case infoUserCount:
			if !strings.HasPrefix(prefix, "presence-") {
				writeError(w, http.StatusBadRequest,
					"info=user_count needs filter_by_prefix=presence-: only presence channels have users")
				return
			}
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown info attribute %q for a channel list", attr))
			return
		}
	}
	ctx, cancel := stateContext(r)
	defer cancel()
	list, err := a.state.Channels(ctx, app.ID, prefix)
	if err != nil {
		a.stateUnavailable(w, app, err)
		return
	}
	out := make(map[string]map[string]any, len(list))
	for _, c := range list {
		out[c.Name] = attributes(c, attrs)
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": out})
}

// attributes are the counts of c that attrs ask for (user_count only on a
// presence channel).
func attributes(c presence.ChannelInfo, attrs []string) map[string]any {
	m := map[string]any{}
	for _, attr := range attrs {
		switch {
		case attr == infoSubscriptionCount:
			m[attr] = c.SubscriptionCount
		case attr == infoUserCount && presence.IsPresence(c.Name):
			m[attr] = c.UserCount
		}
	}
	return m
}

// stateAttributes adds to out the channel-state attributes asked for, and
// occupied, which is always answered. On a refusal or a failed read it
// answers the request itself and reports false. The cached event of a
// cache channel is not part of channel state: info=cache is accepted on
// cache channels and left out here.
func (a *API) stateAttributes(w http.ResponseWriter, r *http.Request, app *appconf.App, channel string,
	attrs []string, out map[string]any) bool {
	for _, attr := range attrs {
		if msg := channelAttrError(channel, attr); msg != "" {
			writeError(w, http.StatusBadRequest, msg)
			return false
		}
	}
	ctx, cancel := stateContext(r)
	defer cancel()
	c, err := a.state.Channel(ctx, app.ID, channel)
	if err != nil {
		a.stateUnavailable(w, app, err)
		return false
	}
	out[infoOccupied] = c.Occupied
	for k, v := range attributes(c, attrs) {
		out[k] = v
	}
	return true
}

// channelUsers serves GET /apps/{id}/channels/{name}/users: the ids of a
// presence channel's members, as {"users":[{"id":…},…]}.
func (a *API) channelUsers(w http.ResponseWriter, r *http.Request, app *appconf.App, channel string) {
	if err := protocol.ValidateChannel(channel); err != nil {
		writeError(w, http.StatusBadRequest, "invalid channel name: "+err.Error())
		return
	}
	if !presence.IsPresence(channel) {
		writeError(w, http.StatusBadRequest, "only presence channels have users")
		return
	}
	ctx, cancel := stateContext(r)
	defer cancel()
	ids, err := a.state.Users(ctx, app.ID, channel)
	if err != nil {
		a.stateUnavailable(w, app, err)
		return
	}
	type user struct {
		ID string `json:"id"`
	}
	users := make([]user, len(ids))
	for i, id := range ids {
		users[i] = user{ID: id}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

// eventInfoError says why the info of an event cannot be answered, or "".
// It is checked before the event is published.
func eventInfoError(info string) string {
	for _, attr := range infoList(info) {
		if attr != infoUserCount && attr != infoSubscriptionCount {
			return fmt.Sprintf("unknown info attribute %q for an event", attr)
		}
	}
	return ""
}

// eventInfo returns, for each channel, the attributes that info asks for
// (user_count only on presence channels). The events are stored already:
// a channel whose state cannot be read gets no attributes, rather than an
// error that would make the caller send the events again.
func (a *API) eventInfo(r *http.Request, app *appconf.App, channels []string, info string) map[string]map[string]any {
	attrs := infoList(info)
	ctx, cancel := stateContext(r)
	defer cancel()
	out := make(map[string]map[string]any, len(channels))
	for _, ch := range channels {
		if _, done := out[ch]; done {
			continue
		}
		c, err := a.state.Channel(ctx, app.ID, ch)
		if err != nil {
			a.log.Warn("reading channel state for an event's info", "app_id", app.ID, "channel", ch, "err", err)
			out[ch] = map[string]any{}
			continue
		}
		out[ch] = attributes(c, attrs)
	}
	return out
}
