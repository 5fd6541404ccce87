package appconf

import (
	"testing"

	"github.com/herald-ws/herald/shared/webhooks"
)

func TestWantsWebhook(t *testing.T) {
	all := Webhook{URL: "https://hooks.example/all"}
	some := Webhook{URL: "https://hooks.example/some", EventTypes: []string{webhooks.ChannelOccupied, webhooks.ClientEvent}}
	a := &App{Webhooks: []Webhook{all, {EventTypes: []string{webhooks.CacheMiss}}}}
	if a.WantsWebhook(webhooks.CacheMiss) {
		t.Error("an endpoint without a URL counts")
	}
	a.Webhooks = append(a.Webhooks, some)
	if !a.WantsWebhook(webhooks.ClientEvent) || a.WantsWebhook(webhooks.CacheMiss) {
		t.Error("WantsWebhook does not follow the endpoints")
	}
}
