package appconf

import (
	"log/slog"
	"slices"
	"strings"
)

// Foreign is a setting of Reverb or soketi that Herald does not read, and
// what to use instead.
type Foreign struct {
	Name    string
	Instead string
}

// foreignSettings are Reverb's settings (config/reverb.php) and soketi's
// that have no meaning in Herald. A name ending in * stands for every
// setting it begins.
var foreignSettings = []Foreign{
	{"REVERB_MAX_REQUEST_SIZE", "HERALD_MAX_EVENT_BYTES bounds the data of one event on the HTTP API; REVERB_APP_MAX_MESSAGE_SIZE bounds client frames"},
	{"REVERB_APP_MAX_REQUEST_SIZE", "HERALD_MAX_EVENT_BYTES bounds the data of one event on the HTTP API"},
	{"REVERB_SCALING_*", "Herald scales through NATS: run more gateways with the same NATS_URL (no Redis)"},
	{"REVERB_APP_RATE_LIMIT*", "HERALD_CLIENT_EVENTS_PER_SECOND limits the client events of one connection (4301 beyond it)"},
	{"REVERB_PULSE_INGEST_INTERVAL", "the status page (HERALD_ADMIN_TOKEN) and /metrics show what Pulse's Reverb cards did"},
	{"REVERB_TELESCOPE_INGEST_INTERVAL", "HERALD_LOG_LEVEL=debug logs each message, as Telescope recorded them"},
	{"REVERB_SERVER", "Herald has one server; REVERB_SERVER_HOST and REVERB_SERVER_PORT choose where it listens"},
	{"SOKETI_*", "Herald does not read soketi's settings: REVERB_APP_ID, REVERB_APP_KEY and REVERB_APP_SECRET (or HERALD_APPS_FILE) name the app, REVERB_SERVER_PORT the port"},
}

// ForeignSet returns the foreign settings that vars sets, one per name, in
// name order, with what to use instead. REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM=all
// is among them: Herald reads it as members.
func ForeignSet(vars map[string]string) []Foreign {
	var out []Foreign
	for name, value := range vars {
		if value == "" {
			continue
		}
		if name == "REVERB_APP_ACCEPT_CLIENT_EVENTS_FROM" && strings.EqualFold(strings.TrimSpace(value), ClientEventsFromAll) {
			out = append(out, Foreign{name + "=all", "Herald relays client events only from connections subscribed to the channel, as with members"})
			continue
		}
		for _, f := range foreignSettings {
			if prefix, ok := strings.CutSuffix(f.Name, "*"); name == f.Name || ok && strings.HasPrefix(name, prefix) {
				out = append(out, Foreign{name, f.Instead})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b Foreign) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// WarnForeign logs one warning for each setting of Reverb or soketi that the
// environment (or .env) sets and Herald does not read. Processes call it
// once, at start.
func WarnForeign(log *slog.Logger) {
	vars, err := Environment()
	if err != nil {
		return // Parse reported it
	}
	for _, f := range ForeignSet(vars) {
		log.Warn("setting has no effect in Herald", "setting", f.Name, "instead", f.Instead)
	}
}
