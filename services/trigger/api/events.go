package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/herald-ws/herald/services/trigger/internal/payload"
	"github.com/herald-ws/herald/services/trigger/internal/publish"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
)

// queryTimeout bounds the NATS requests of the channel queries and of
// terminate_connections.
const queryTimeout = 5 * time.Second

// maxIdempotencyKey bounds the caller's key, which becomes part of each
// message id.
const maxIdempotencyKey = 200

// idempotencyKey returns the caller's key, from X-Idempotency-Key or
// Idempotency-Key. Message ids come only from it: an id derived from the
// body would drop the second of two identical events (a progress bar at 50%
// twice).
func idempotencyKey(r *http.Request) (string, error) {
	key := r.Header.Get("X-Idempotency-Key")
	if key == "" {
		key = r.Header.Get("Idempotency-Key")
	}
	if len(key) > maxIdempotencyKey {
		return "", errors.New("idempotency key is longer than " + strconv.Itoa(maxIdempotencyKey) + " characters")
	}
	return key, nil
}

// events serves POST /apps/{id}/events: one message per channel.
func (a *API) events(w http.ResponseWriter, r *http.Request, app *appconf.App, body []byte) {
	ev, err := payload.ParseEvent(body, app.MaxEventBytes)
	if err != nil {
		writePayloadError(w, err)
		return
	}
	if msg := eventInfoError(ev.Info); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	msgs := make([]events.Event, 0, len(ev.Channels))
	for _, ch := range ev.Channels {
		m := events.Event{AppID: app.ID, Channel: ch, Name: ev.Name, Data: ev.Data, ExcludeSocketID: ev.SocketID}
		if key != "" {
			m.MsgID = key + ":" + ch
		}
		msgs = append(msgs, m)
	}
	if !a.publish(w, r, app, msgs) {
		return
	}
	if ev.Info == "" {
		writeEmpty(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": a.eventInfo(r, app, ev.Channels, ev.Info)})
}

// batchEvents serves POST /apps/{id}/batch_events.
func (a *API) batchEvents(w http.ResponseWriter, r *http.Request, app *appconf.App, body []byte) {
	evs, err := payload.ParseBatch(body, app.MaxEventBytes)
	if err != nil {
		writePayloadError(w, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	msgs := make([]events.Event, 0, len(evs))
	info := false
	for i, ev := range evs {
		if msg := eventInfoError(ev.Info); msg != "" {
			writeError(w, http.StatusBadRequest, "batch["+strconv.Itoa(i)+"]: "+msg)
			return
		}
	}
	for i, ev := range evs {
		ch := ev.Channels[0]
		m := events.Event{AppID: app.ID, Channel: ch, Name: ev.Name, Data: ev.Data, ExcludeSocketID: ev.SocketID}
		if key != "" {
			m.MsgID = key + ":" + ch + ":" + strconv.Itoa(i)
		}
		msgs = append(msgs, m)
		info = info || ev.Info != ""
	}
	if !a.publish(w, r, app, msgs) {
		return
	}
	if !info {
		writeEmpty(w)
		return
	}
	batch := make([]map[string]any, len(evs))
	for i, ev := range evs {
		batch[i] = map[string]any{}
		if ev.Info != "" {
			batch[i] = a.eventInfo(r, app, ev.Channels, ev.Info)[ev.Channels[0]]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch": batch})
}

// publish stores msgs and reports whether it did; when not, it has
// answered the request: 503 when NATS or the stream could not be reached
// within the publish retry budget (the caller may retry), 500 when
// JetStream refused the events.
func (a *API) publish(w http.ResponseWriter, r *http.Request, app *appconf.App, msgs []events.Event) bool {
	start := time.Now()
	err := a.pub.Publish(r.Context(), app, msgs)
	if err == nil {
		a.metrics.published(app.ID, len(msgs), time.Since(start))
		if a.debug {
			for _, m := range msgs {
				a.log.Debug("event stored", "app_id", app.ID, "channel", m.Channel, "event", m.Name,
					"bytes", len(m.Data), "exclude_socket_id", m.ExcludeSocketID)
			}
		}
		return true
	}
	if r.Context().Err() != nil {
		// The caller went away: nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, "request canceled before the events were stored")
		return false
	}
	if publish.Unavailable(err) {
		// An outage is logged once by the connection handlers, not per request.
		a.log.Debug("storing events failed", "app_id", app.ID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "events not stored: event store unavailable: "+err.Error())
		return false
	}
	a.log.Warn("storing events failed", "app_id", app.ID, "err", err)
	writeError(w, http.StatusInternalServerError, "events not stored: "+err.Error())
	return false
}

func writePayloadError(w http.ResponseWriter, err error) {
	var pe *payload.Error
	if errors.As(err, &pe) {
		writeError(w, pe.Status, pe.Message)
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}
