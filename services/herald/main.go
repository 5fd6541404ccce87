// Command herald runs the whole of Herald in one process: an embedded NATS
// server with JetStream, the WebSocket gateway, the Pusher HTTP API and the
// presence service, on one port, as Laravel Reverb does.
package main

import "github.com/herald-ws/herald/shared/process"

func main() { process.Main(program) }

var program = process.Program[config]{
	Name:     "herald",
	Summary:  "Herald in one process: WebSocket (/app/{key}) and HTTP API (/apps/{id}) on one port, on an embedded NATS or NATS_URL",
	Settings: func(c *config) *process.Settings { return &c.Process },
	Addr:     func(c *config) string { return c.Server.Addr() },
	Start:    start,
	Commands: []process.Command{
		{Name: "keygen", Args: keygenArgs, Summary: keygenSummary, Run: keygen},
		{Name: "send", Args: sendArgs, Summary: sendSummary, Run: send},
	},
}
