package main

import (
	"errors"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/process"
)

// config is every setting of the gateway binary. App settings (REVERB_APP_*,
// HERALD_APPS_FILE and the limits) are read by appconf.
type config struct {
	Process process.Settings
	Gateway gateway.Settings

	Host string `env:"REVERB_SERVER_HOST" envDefault:"0.0.0.0"`
	Port int    `env:"REVERB_SERVER_PORT" envDefault:"8080"`
}

// Check validates what only the gateway binary reads.
func (c *config) Check() error {
	return errors.Join(process.CheckPort("REVERB_SERVER_PORT", c.Port), c.Process.NATS.RequireNATS())
}
