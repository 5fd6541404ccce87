package appconf

// WantsWebhook reports whether the app has an endpoint that receives
// webhook event name (webhooks.Endpoint.Takes).
func (a *App) WantsWebhook(name string) bool {
	for _, w := range a.Webhooks {
		if w.URL != "" && w.Takes(name) {
			return true
		}
	}
	return false
}
