package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
)

// config is every setting of the all-in-one process. App settings
// (REVERB_APP_*, HERALD_APPS_FILE and the limits) are read by appconf.
type config struct {
	Host string `env:"REVERB_SERVER_HOST" envDefault:"0.0.0.0"`
	Port int    `env:"REVERB_SERVER_PORT" envDefault:"8080"`
	// Path is a prefix before /app and /apps, as Reverb's REVERB_SERVER_PATH.
	Path string `env:"REVERB_SERVER_PATH"`

	// NATSURL, when set, joins an external NATS instead of embedding one.
	NATSURL string `env:"NATS_URL"`
	// DataDir holds the embedded JetStream store and the generated app.
	DataDir string `env:"HERALD_DATA_DIR" envDefault:".data"`
	// NATSListen lets other processes (gateways, a trigger API) join the
	// embedded NATS server, e.g. 127.0.0.1:4222. Empty: in-process only.
	NATSListen string `env:"HERALD_NATS_LISTEN"`

	StreamReplicas  int           `env:"HERALD_STREAM_REPLICAS" envDefault:"1"`
	StreamMaxBytes  int64         `env:"HERALD_STREAM_MAX_BYTES" envDefault:"1073741824"`
	WriteQueueBytes int           `env:"HERALD_WRITE_QUEUE_BYTES" envDefault:"1048576"`
	WriteTimeout    time.Duration `env:"HERALD_WRITE_TIMEOUT" envDefault:"10s"`
	ShutdownTimeout time.Duration `env:"HERALD_SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// PublishRetryFor bounds how long the HTTP API's publish keeps trying
	// through a NATS reconnect or a stream leader election; 0: no retry.
	PublishRetryFor time.Duration `env:"HERALD_PUBLISH_RETRY_FOR" envDefault:"5s"`

	// Global channel state: the gateway's heartbeat TTL and its wait for
	// the presence service, and the presence service's own settings (see
	// services/presence).
	GatewayTTL            time.Duration `env:"HERALD_GATEWAY_TTL" envDefault:"15s"`
	PresenceTimeout       time.Duration `env:"HERALD_PRESENCE_TIMEOUT" envDefault:"5s"`
	PresenceDrainGrace    time.Duration `env:"HERALD_PRESENCE_DRAIN_GRACE" envDefault:"10s"`
	PresenceLockTTL       time.Duration `env:"HERALD_PRESENCE_LOCK_TTL" envDefault:"10s"`
	PresenceFlushInterval time.Duration `env:"HERALD_PRESENCE_FLUSH_INTERVAL" envDefault:"50ms"`
	// WebhookRetryFor bounds how long a webhook batch is retried;
	// WebhookTimeout bounds one POST.
	WebhookRetryFor time.Duration `env:"HERALD_WEBHOOK_RETRY_FOR" envDefault:"5m"`
	WebhookTimeout  time.Duration `env:"HERALD_WEBHOOK_TIMEOUT" envDefault:"5s"`

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
	case c.Path != "" && (!strings.HasPrefix(c.Path, "/") || strings.HasSuffix(c.Path, "/")):
		return c, fmt.Errorf("REVERB_SERVER_PATH=%q must start with / and not end with /", c.Path)
	case c.StreamReplicas < 1 || c.StreamReplicas > 5:
		return c, fmt.Errorf("HERALD_STREAM_REPLICAS=%d must be 1 to 5", c.StreamReplicas)
	case c.StreamMaxBytes < 1<<20:
		return c, fmt.Errorf("HERALD_STREAM_MAX_BYTES=%d is below 1 MiB", c.StreamMaxBytes)
	case c.WriteQueueBytes < 64<<10:
		return c, fmt.Errorf("HERALD_WRITE_QUEUE_BYTES=%d is below 64 KiB", c.WriteQueueBytes)
	case c.WriteTimeout <= 0:
		return c, fmt.Errorf("HERALD_WRITE_TIMEOUT=%s must be positive", c.WriteTimeout)
	case c.PublishRetryFor < 0 || c.PublishRetryFor > time.Minute:
		return c, fmt.Errorf("HERALD_PUBLISH_RETRY_FOR=%s must be 0 to 1m", c.PublishRetryFor)
	case c.ShutdownTimeout <= 0:
		return c, fmt.Errorf("HERALD_SHUTDOWN_TIMEOUT=%s must be positive", c.ShutdownTimeout)
	case c.GatewayTTL < time.Second:
		return c, fmt.Errorf("HERALD_GATEWAY_TTL=%s is below 1s", c.GatewayTTL)
	case c.PresenceTimeout <= 0:
		return c, fmt.Errorf("HERALD_PRESENCE_TIMEOUT=%s must be positive", c.PresenceTimeout)
	case c.PresenceDrainGrace < 0:
		return c, fmt.Errorf("HERALD_PRESENCE_DRAIN_GRACE=%s is negative", c.PresenceDrainGrace)
	case c.PresenceLockTTL < time.Second:
		return c, fmt.Errorf("HERALD_PRESENCE_LOCK_TTL=%s is below 1s", c.PresenceLockTTL)
	case c.WebhookRetryFor <= 0:
		return c, fmt.Errorf("HERALD_WEBHOOK_RETRY_FOR=%s must be positive", c.WebhookRetryFor)
	case c.WebhookTimeout <= 0:
		return c, fmt.Errorf("HERALD_WEBHOOK_TIMEOUT=%s must be positive", c.WebhookTimeout)
	case c.PresenceFlushInterval <= 0 || c.PresenceFlushInterval > time.Second:
		return c, fmt.Errorf("HERALD_PRESENCE_FLUSH_INTERVAL=%s must be above 0 and at most 1s", c.PresenceFlushInterval)
	case c.NATSURL != "" && c.NATSListen != "":
		return c, fmt.Errorf("NATS_URL and HERALD_NATS_LISTEN are both set: HERALD_NATS_LISTEN only applies to the embedded server")
	}
	if c.DataDir == "" {
		return c, fmt.Errorf("HERALD_DATA_DIR is empty")
	}
	return c, nil
}
