package appconf

import "slices"

// Webhook event types sent per client event, per cache miss or per count
// change: frequent enough that an endpoint gets them only when its
// EventTypes names them, as Pusher enables each of them on its own. An
// endpoint without EventTypes gets every other type.
const (
	WebhookClientEvent       = "client_event"
	WebhookCacheMiss         = "cache_miss"
	WebhookSubscriptionCount = "subscription_count"
)

// optInWebhooks are the types above.
var optInWebhooks = []string{WebhookClientEvent, WebhookCacheMiss, WebhookSubscriptionCount}

// Takes reports whether the endpoint receives webhook event name.
func (w Webhook) Takes(name string) bool {
	if len(w.EventTypes) == 0 {
		return !slices.Contains(optInWebhooks, name)
	}
	return slices.Contains(w.EventTypes, name)
}

// WantsWebhook reports whether the app has an endpoint that receives
// webhook event name.
func (a *App) WantsWebhook(name string) bool {
	for _, w := range a.Webhooks {
		if w.URL != "" && w.Takes(name) {
			return true
		}
	}
	return false
}
