package names

// Names of the cache stream: one per app, holding the last event of each
// cache channel (cache-, private-cache-, private-encrypted-cache-,
// presence-cache-) for longer than the events stream's replay window.

// HeaderEventSequence holds, on a cache stream message, the sequence of the
// same event in the app's events stream: the position it had there, which
// lets a gateway order the cached event against live ones.
const HeaderEventSequence = "Herald-Event-Seq"

// CacheStream is the JetStream stream that keeps an app's cache channels'
// last events.
func CacheStream(appID string) string { return "HERALD_CACHE_" + EncodeToken(appID) }

// CacheSubjects is the subject filter of an app's cache stream.
func CacheSubjects(appID string) string { return Prefix + ".cache." + EncodeToken(appID) + ".*" }

// CacheSubject is where the trigger API stores the last event of one cache
// channel.
func CacheSubject(appID, channel string) string {
	return Prefix + ".cache." + EncodeToken(appID) + "." + EncodeToken(channel)
}
