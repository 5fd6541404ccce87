package main

import (
	"github.com/herald-ws/herald/scripts/loadgen/internal/client"
)

// centrifugoOptions makes connection i a Centrifugo client: its own user's
// connection token and, for private channels, a subscription token for its
// channel, as a Pusher private channel carries a signed auth.
func centrifugoOptions(o *client.Options, cfg config, i int) {
	user := client.CentrifugoUser(i)
	o.Centrifugo = true
	o.Token = client.CentrifugoToken(cfg.CentrifugoSecret, user, "")
	if cfg.Private && o.Channel != "" {
		own := o.Channel
		o.SubToken = func(ch string) string {
			if ch != own {
				return "" // the shared channel is public
			}
			return client.CentrifugoToken(cfg.CentrifugoSecret, user, ch)
		}
	}
}
