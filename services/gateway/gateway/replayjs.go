package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/herald-ws/herald/services/gateway/web"
)

// ReplayJSPath is where, under PathPrefix, the gateway serves the browser
// build of herald-replay: under /app, so that a proxy that forwards the
// WebSocket path serves it too.
const ReplayJSPath = "/app/_herald/replay.js"

// replayJSMaxAge is how long browsers and proxies may keep the script
// without asking again. The path has no version in it: a short time lets an
// upgrade reach clients soon, and the ETag makes asking again cheap.
const replayJSMaxAge = "public, max-age=600"

// replayJS serves web.ReplayJS with its ETag; ServeContent answers
// conditional, range and HEAD requests.
func replayJS() http.Handler {
	sum := sha256.Sum256(web.ReplayJS)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", replayJSMaxAge)
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// Scripts loaded with crossorigin, or imported, need it; the file
		// is public.
		h.Set("Access-Control-Allow-Origin", "*")
		http.ServeContent(w, r, "replay.js", time.Time{}, bytes.NewReader(web.ReplayJS))
	})
}
