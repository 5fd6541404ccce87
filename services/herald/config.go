package main

import (
	"errors"

	"github.com/herald-ws/herald/services/gateway/gateway"
	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/services/trigger/api"
	"github.com/herald-ws/herald/services/trigger/statuspage"
	"github.com/herald-ws/herald/shared/process"
)

// config is every setting of the all-in-one process. App settings
// (REVERB_APP_*, HERALD_APPS_FILE and the limits) are read by appconf; the
// gateway's and the presence service's own are theirs, as in their binaries.
type config struct {
	Process  process.Settings
	Gateway  gateway.Settings
	API      api.Settings
	Presence service.Settings
	Status   statuspage.Settings
	Server   process.ReverbServer

	// DataDir holds the embedded JetStream store and the generated app.
	DataDir string `env:"HERALD_DATA_DIR" envDefault:".data"`
	// NATSListen lets other processes (gateways, a trigger API) join the
	// embedded NATS server, e.g. 127.0.0.1:4222. Empty: in-process only.
	NATSListen string `env:"HERALD_NATS_LISTEN"`
}

// Check validates what only herald reads. NATS_URL is optional: empty
// starts the embedded server.
func (c *config) Check() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("HERALD_DATA_DIR is empty"))
	}
	if c.Process.NATS.URL != "" && c.NATSListen != "" {
		errs = append(errs, errors.New("NATS_URL and HERALD_NATS_LISTEN are both set: HERALD_NATS_LISTEN only applies to the embedded server"))
	}
	return errors.Join(errs...)
}
