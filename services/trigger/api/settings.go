package api

import (
	"cmp"
	"fmt"
	"time"
)

// Settings are the HTTP API's own settings, the same in the trigger binary
// and in herald.
type Settings struct {
	// PublishRetryFor bounds how long a publish keeps trying through a
	// NATS reconnect or a stream leader election; 0 answers 503 at once.
	PublishRetryFor time.Duration `env:"HERALD_PUBLISH_RETRY_FOR" envDefault:"25s"`
}

// Check validates the settings; errors name the variable.
func (s *Settings) Check() error {
	if s.PublishRetryFor < 0 || s.PublishRetryFor > time.Minute {
		return fmt.Errorf("HERALD_PUBLISH_RETRY_FOR=%s must be 0 to 1m", s.PublishRetryFor)
	}
	return nil
}

// Apply copies the settings into o.
func (s Settings) Apply(o *Options) {
	// 0 in the setting means no retry; in the options, the default.
	o.PublishRetryFor = cmp.Or(s.PublishRetryFor, -1)
}
