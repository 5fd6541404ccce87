package gateway

import (
	"errors"
	"fmt"
	"time"
)

// Settings are the gateway's own settings, the same in the gateway binary
// and in herald.
type Settings struct {
	// WriteQueueBytes bounds each connection's send queue; a client that
	// falls further behind is closed with 4100.
	WriteQueueBytes int `env:"HERALD_WRITE_QUEUE_BYTES" envDefault:"1048576"`
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration `env:"HERALD_WRITE_TIMEOUT" envDefault:"10s"`
	// GatewayTTL is the heartbeat's time to live: the presence service
	// removes the members of a gateway that died within about that time.
	GatewayTTL time.Duration `env:"HERALD_GATEWAY_TTL" envDefault:"15s"`
	// PresenceTimeout bounds a presence subscribe's wait for the presence
	// service.
	PresenceTimeout time.Duration `env:"HERALD_PRESENCE_TIMEOUT" envDefault:"5s"`
	// LogConnections logs one info line per connect and disconnect. (Event
	// data in the debug lines is process.Settings.LogPayloads.)
	LogConnections bool `env:"HERALD_LOG_CONNECTIONS" envDefault:"false"`
}

// MinWriteQueueBytes is the smallest send queue: room for a few frames of
// the largest size a client may be sent.
const MinWriteQueueBytes = 64 << 10

// Check validates the settings; errors name the variable.
func (s *Settings) Check() error {
	var errs []error
	if s.WriteQueueBytes < MinWriteQueueBytes {
		errs = append(errs, fmt.Errorf("HERALD_WRITE_QUEUE_BYTES=%d is below 64 KiB (65536)", s.WriteQueueBytes))
	}
	if s.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("HERALD_WRITE_TIMEOUT=%s must be positive", s.WriteTimeout))
	}
	if s.GatewayTTL < time.Second {
		errs = append(errs, fmt.Errorf("HERALD_GATEWAY_TTL=%s is below 1s", s.GatewayTTL))
	}
	if s.PresenceTimeout <= 0 {
		errs = append(errs, fmt.Errorf("HERALD_PRESENCE_TIMEOUT=%s must be positive", s.PresenceTimeout))
	}
	return errors.Join(errs...)
}

// Apply copies the settings into o.
func (s Settings) Apply(o *Options) {
	o.WriteQueueBytes = s.WriteQueueBytes
	o.WriteTimeout = s.WriteTimeout
	o.GatewayTTL = s.GatewayTTL
	o.PresenceTimeout = s.PresenceTimeout
	o.LogConnections = s.LogConnections
}
