package main

import (
	"fmt"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
)

// config is every setting of the presence service. App settings (limits,
// subscription counts) are read by appconf.
type config struct {
	NATSURL string `env:"NATS_URL,required,notEmpty"`
	// Host and Port serve /up and /metrics.
	Host string `env:"HERALD_PRESENCE_HOST" envDefault:"0.0.0.0"`
	Port int    `env:"HERALD_PRESENCE_PORT" envDefault:"8082"`

	// DrainGrace holds member_removed for the users of a draining gateway.
	DrainGrace time.Duration `env:"HERALD_PRESENCE_DRAIN_GRACE" envDefault:"10s"`
	// LockTTL bounds how long a standby waits for a dead active instance.
	LockTTL time.Duration `env:"HERALD_PRESENCE_LOCK_TTL" envDefault:"10s"`
	// FlushInterval coalesces writes of channel state.
	FlushInterval time.Duration `env:"HERALD_PRESENCE_FLUSH_INTERVAL" envDefault:"50ms"`

	// WebhookRetryFor is how long a webhook batch is retried after it was
	// queued; WebhookTimeout bounds one POST.
	WebhookRetryFor time.Duration `env:"HERALD_WEBHOOK_RETRY_FOR" envDefault:"5m"`
	WebhookTimeout  time.Duration `env:"HERALD_WEBHOOK_TIMEOUT" envDefault:"5s"`

	StreamReplicas  int           `env:"HERALD_STREAM_REPLICAS" envDefault:"1"`
	ShutdownTimeout time.Duration `env:"HERALD_SHUTDOWN_TIMEOUT" envDefault:"10s"`

	LogLevel  string `env:"HERALD_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"HERALD_LOG_FORMAT" envDefault:"text"`
}

func parseConfig() (config, error) {
	c, err := appconf.Parse[config]()
	if err != nil {
		return c, fmt.Errorf("reading settings: %w", err)
	}
	switch {
	case c.Port < 1 || c.Port > 65535:
		return c, fmt.Errorf("HERALD_PRESENCE_PORT=%d is not a port", c.Port)
	case c.DrainGrace < 0:
		return c, fmt.Errorf("HERALD_PRESENCE_DRAIN_GRACE=%s is negative", c.DrainGrace)
	case c.LockTTL < time.Second:
		return c, fmt.Errorf("HERALD_PRESENCE_LOCK_TTL=%s is below 1s", c.LockTTL)
	case c.FlushInterval <= 0 || c.FlushInterval > time.Second:
		return c, fmt.Errorf("HERALD_PRESENCE_FLUSH_INTERVAL=%s must be above 0 and at most 1s", c.FlushInterval)
	case c.WebhookRetryFor <= 0:
		return c, fmt.Errorf("HERALD_WEBHOOK_RETRY_FOR=%s must be positive", c.WebhookRetryFor)
	case c.WebhookTimeout <= 0:
		return c, fmt.Errorf("HERALD_WEBHOOK_TIMEOUT=%s must be positive", c.WebhookTimeout)
	case c.StreamReplicas < 1 || c.StreamReplicas > 5:
		return c, fmt.Errorf("HERALD_STREAM_REPLICAS=%d must be 1 to 5", c.StreamReplicas)
	case c.ShutdownTimeout <= 0:
		return c, fmt.Errorf("HERALD_SHUTDOWN_TIMEOUT=%s must be positive", c.ShutdownTimeout)
	}
	return c, nil
}
