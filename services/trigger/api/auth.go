package api

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/signing"
)

// Hard caps on request bodies, read before anything else is checked. An
// app whose data limit is larger gets room for it.
const (
	eventBodyCap = 256 << 10
	batchBodyCap = 1 << 20
	queryBodyCap = 64 << 10
	// bodySlack covers channels, names and JSON around the data.
	bodySlack = 64 << 10
)

func bodyLimit(route string, app *appconf.App) int64 {
	switch route {
	case routeEvents:
		return max(eventBodyCap, int64(app.MaxEventBytes)*2+bodySlack)
	case routeBatch:
		return max(batchBodyCap, int64(app.MaxEventBytes)*2*10+bodySlack)
	}
	return queryBodyCap
}

// readBody reads at most limit bytes; a larger body fails with
// *http.MaxBytesError without being read in full, and the connection is
// closed after the answer.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if r.ContentLength <= 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	// One allocation of the announced size, the common case. net/http
	// reads no more than announced, so the limit checked above holds
	// without a MaxBytesReader.
	b := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// verify checks the request signature. The SDKs sign the path they send
// to; behind a proxy that strips the path prefix they signed it without
// the prefix, so both forms are accepted, each raw and unescaped.
func (a *API) verify(r *http.Request, body []byte, app *appconf.App) error {
	now := a.now()
	// The path as received first: the one nearly every request signed.
	err := signing.VerifyRequest(r.Method, r.URL.Path, r.URL.RawQuery, body, app.Key, app.Secret, now)
	if errors.Is(err, signing.ErrSignature) {
		for _, p := range candidatePaths(r, a.prefix)[1:] {
			err = signing.VerifyRequest(r.Method, p, r.URL.RawQuery, body, app.Key, app.Secret, now)
			if !errors.Is(err, signing.ErrSignature) {
				break // accepted, or refused for a reason the path does not change
			}
		}
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, signing.ErrKeyMismatch) {
		return errors.New("auth_key does not belong to this app")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "signing: "))
}

// candidatePaths are the paths a request may have been signed with, r.URL.Path
// first.
func candidatePaths(r *http.Request, prefix string) []string {
	paths := make([]string, 0, 4)
	add := func(p string) {
		for _, q := range paths {
			if q == p {
				return
			}
		}
		paths = append(paths, p)
	}
	for _, p := range []string{r.URL.Path, r.URL.EscapedPath()} {
		add(p)
		if prefix != "" {
			if rest, ok := strings.CutPrefix(p, prefix); ok && strings.HasPrefix(rest, "/") {
				add(rest)
			}
		}
	}
	return paths
}
