package hub

import (
	"context"
	"log/slog"
)

// debugEnabled is decided once, when the hub starts: at info level the
// dispatchers pay one branch per message and format nothing.
func debugEnabled(log *slog.Logger) bool {
	return log.Enabled(context.Background(), slog.LevelDebug)
}

// traceDelivered logs one line per local recipient of an event, as a debug
// view of the traffic: app, socket, channel, event name and size, and the
// data only with Options.LogPayloads. Callers check h.debug first.
func (h *Hub) traceDelivered(c *channel, event string, data []byte, list []Subscriber, targets []EventSubscriber, exclude string) {
	attrs := []slog.Attr{
		slog.String("app_id", c.app), slog.String("socket_id", ""), slog.String("channel", c.name),
		slog.String("event", event), slog.Int("bytes", len(data)),
	}
	if h.opt.LogPayloads {
		attrs = append(attrs, slog.String("data", string(data)))
	}
	one := func(socketID string) {
		if exclude != "" && socketID == exclude {
			return
		}
		attrs[1] = slog.String("socket_id", socketID)
		h.log.LogAttrs(context.Background(), slog.LevelDebug, "event delivered", attrs...)
	}
	for _, s := range list {
		one(s.SocketID())
	}
	for _, t := range targets {
		one(t.SocketID())
	}
}
