// Package logging builds the slog logger every Herald process uses, from
// HERALD_LOG_LEVEL and HERALD_LOG_FORMAT.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger writing to w at level (debug, info, warn, error) in
// format (text or json). Errors name the setting.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("HERALD_LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("HERALD_LOG_FORMAT=%q: want text or json", format)
}
