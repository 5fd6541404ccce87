package main

import (
	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/shared/process"
)

// config is every setting of the gateway binary. App settings (REVERB_APP_*,
// HERALD_APPS_FILE and the limits) are read by appconf.
type config struct {
	Process process.Settings
	Gateway gateway.Settings
	Server  process.ReverbServer
}

// Check validates what only the gateway binary reads.
func (c *config) Check() error {
	return c.Process.NATS.RequireNATS()
}
