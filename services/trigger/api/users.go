package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
)

// terminate serves POST /apps/{id}/users/{user_id}/terminate_connections:
// every gateway closes that user's signed-in connections. The answer comes
// once the NATS server has the request; gateways act on it a moment later.
func (a *API) terminate(w http.ResponseWriter, r *http.Request, app *appconf.App, userID string) {
	if app.MaxUserIDLength > 0 && len(userID) > app.MaxUserIDLength {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("user id is longer than %d bytes", app.MaxUserIDLength))
		return
	}
	subject := names.UserTerminateSubject(app.ID)
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	err := a.nc.Publish(subject, []byte(userID))
	if err == nil {
		err = a.nc.FlushWithContext(ctx)
	}
	if err != nil {
		a.log.Warn("terminate_connections not published", "app_id", app.ID, "subject", subject, "err", err)
		writeError(w, http.StatusServiceUnavailable, "connections not terminated: NATS unavailable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
