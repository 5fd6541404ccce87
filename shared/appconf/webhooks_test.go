package appconf

import "testing"

func TestWebhookTakes(t *testing.T) {
	all := Webhook{URL: "https://hooks.example/all"}
	some := Webhook{URL: "https://hooks.example/some", EventTypes: []string{"channel_occupied", WebhookClientEvent}}
	cases := []struct {
		name  string
		hook  Webhook
		event string
		want  bool
	}{
		{"all takes occupancy", all, "channel_occupied", true},
		{"all takes members", all, "member_added", true},
		{"all skips client events", all, WebhookClientEvent, false},
		{"all skips cache misses", all, WebhookCacheMiss, false},
		{"all skips counts", all, WebhookSubscriptionCount, false},
		{"listed occupancy", some, "channel_occupied", true},
		{"listed client events", some, WebhookClientEvent, true},
		{"unlisted vacated", some, "channel_vacated", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.hook.Takes(c.event); got != c.want {
				t.Errorf("Takes(%q) = %v, want %v", c.event, got, c.want)
			}
		})
	}
	a := &App{Webhooks: []Webhook{all, {EventTypes: []string{WebhookCacheMiss}}}}
	if a.WantsWebhook(WebhookCacheMiss) {
		t.Error("an endpoint without a URL counts")
	}
	a.Webhooks = append(a.Webhooks, some)
	if !a.WantsWebhook(WebhookClientEvent) || a.WantsWebhook(WebhookCacheMiss) {
		t.Error("WantsWebhook does not follow the endpoints")
	}
}
