package service

import (
	"errors"
	"fmt"
	"time"
)

// Settings are the presence service's own settings, the same in the
// presence binary and in herald.
type Settings struct {
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
}

// Check validates the settings; errors name the variable.
func (s *Settings) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.DrainGrace < 0 {
		bad("HERALD_PRESENCE_DRAIN_GRACE=%s is negative", s.DrainGrace)
	}
	if s.LockTTL < time.Second {
		bad("HERALD_PRESENCE_LOCK_TTL=%s is below 1s", s.LockTTL)
	}
	if s.FlushInterval <= 0 || s.FlushInterval > time.Second {
		bad("HERALD_PRESENCE_FLUSH_INTERVAL=%s must be above 0 and at most 1s", s.FlushInterval)
	}
	if s.WebhookRetryFor <= 0 {
		bad("HERALD_WEBHOOK_RETRY_FOR=%s must be positive", s.WebhookRetryFor)
	}
	if s.WebhookTimeout <= 0 {
		bad("HERALD_WEBHOOK_TIMEOUT=%s must be positive", s.WebhookTimeout)
	}
	return errors.Join(errs...)
}

// Apply copies the settings into o.
func (s Settings) Apply(o *Options) {
	o.DrainGrace = s.DrainGrace
	o.LockTTL = s.LockTTL
	o.FlushInterval = s.FlushInterval
	o.WebhookRetryFor = s.WebhookRetryFor
	o.WebhookTimeout = s.WebhookTimeout
}
