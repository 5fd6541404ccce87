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
	Addr:     func(c *config) string { return process.JoinHostPort(c.Host, c.Port) },
	Start:    start,
	Commands: []process.Command{
		{Name: "keygen", Args: "[-apps-file PATH [-if-missing]] [-host H] [-port P] [-scheme S]",
			Summary: "generate an app id, key and secret; print the .env lines for Herald and Laravel, or write an apps file (0600)",
			Run:     keygen},
		{Name: "send", Args: "[-app ID] [-url URL] CHANNEL EVENT DATA",
			Summary: "publish one event through the HTTP API, signed with the configured app; print the answer; exit 1 on an error",
			Run:     send},
	},
}
