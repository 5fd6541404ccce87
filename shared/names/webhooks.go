package names

// Names of webhook delivery: the presence service (occupancy, members,
// subscription counts) and the gateways (client events, cache misses) queue
// each webhook batch in WebhooksStream, one subject per app and endpoint; the
// active presence service delivers it from there.

const (
	// WebhooksStream queues webhook batches until their endpoint answers
	// 2xx or they are too old to retry (work queue).
	WebhooksStream = "HERALD_WEBHOOKS"
	// WebhookConsumerPrefix starts the name of each endpoint's durable
	// consumer of WebhooksStream.
	WebhookConsumerPrefix = "webhook_"
	// HeaderWebhookID holds, on a queued batch and on its POST, an id that
	// stays the same across retries, so that a receiver can drop a batch it
	// already processed.
	HeaderWebhookID = "X-Herald-Webhook-Id"
)

// WebhookSubjects is the subject filter of WebhooksStream.
func WebhookSubjects() string { return Prefix + ".webhook.*.*" }

// WebhookSubject is where the batches of one app for one endpoint URL are
// queued.
func WebhookSubject(appID, url string) string {
	return Prefix + ".webhook." + EncodeToken(appID) + "." + EncodeToken(url)
}
