package main

import (
	"fmt"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
)

// config is every setting of the gateway binary. App settings (REVERB_APP_*,
// HERALD_APPS_FILE and the limits) are read by appconf.
type config struct {
	Host string `env:"REVERB_SERVER_HOST" envDefault:"0.0.0.0"`
	Port int    `env:"REVERB_SERVER_PORT" envDefault:"8080"`
	// Path is a prefix before /app, as Reverb's REVERB_SERVER_PATH.
	Path    string `env:"REVERB_SERVER_PATH"`
	NATSURL string `env:"NATS_URL,required,notEmpty"`

	// WriteQueueBytes bounds each connection's send queue; a client that
	// falls further behind is closed with 4100.
	WriteQueueBytes int           `env:"HERALD_WRITE_QUEUE_BYTES" envDefault:"1048576"`
	WriteTimeout    time.Duration `env:"HERALD_WRITE_TIMEOUT" envDefault:"10s"`
	StreamReplicas  int           `env:"HERALD_STREAM_REPLICAS" envDefault:"1"`
	StreamMaxBytes  int64         `env:"HERALD_STREAM_MAX_BYTES" envDefault:"1073741824"`

	// GatewayTTL is the heartbeat's time to live: the presence service
	// removes the members of a gateway that died within about that time.
	GatewayTTL time.Duration `env:"HERALD_GATEWAY_TTL" envDefault:"15s"`
	// PresenceTimeout bounds a presence subscribe's wait for the presence
	// service.
	PresenceTimeout time.Duration `env:"HERALD_PRESENCE_TIMEOUT" envDefault:"5s"`

	LogLevel  string `env:"HERALD_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"HERALD_LOG_FORMAT" envDefault:"text"`
	// LogConnections logs one info line per connect and disconnect;
	// LogPayloads adds event data to the debug lines of the traffic.
	LogConnections bool `env:"HERALD_LOG_CONNECTIONS" envDefault:"false"`
	LogPayloads    bool `env:"HERALD_LOG_PAYLOADS" envDefault:"false"`
}

func parseConfig() (config, error) {
	c, err := appconf.Parse[config]()
	if err != nil {
		return c, fmt.Errorf("reading settings: %w", err)
	}
	switch {
	case c.Port < 1 || c.Port > 65535:
		return c, fmt.Errorf("REVERB_SERVER_PORT=%d is not a port", c.Port)
	case c.WriteQueueBytes < 1:
		return c, fmt.Errorf("HERALD_WRITE_QUEUE_BYTES=%d must be positive", c.WriteQueueBytes)
	case c.WriteTimeout <= 0:
		return c, fmt.Errorf("HERALD_WRITE_TIMEOUT=%s must be positive", c.WriteTimeout)
	case c.StreamReplicas < 1 || c.StreamReplicas > 5:
		return c, fmt.Errorf("HERALD_STREAM_REPLICAS=%d must be 1 to 5", c.StreamReplicas)
	case c.StreamMaxBytes < 1:
		return c, fmt.Errorf("HERALD_STREAM_MAX_BYTES=%d must be positive", c.StreamMaxBytes)
	case c.GatewayTTL < time.Second:
		return c, fmt.Errorf("HERALD_GATEWAY_TTL=%s is below 1s", c.GatewayTTL)
	case c.PresenceTimeout <= 0:
		return c, fmt.Errorf("HERALD_PRESENCE_TIMEOUT=%s must be positive", c.PresenceTimeout)
	}
	return c, nil
}
