package process

import (
	"net/http"
	"net/http/httptest"
	"path"
	"testing"
)

// routes is the public listener's routing with handlers that name
// themselves in the answer: the mux alone, and serviceFirst in front of it.
func routes(set *Settings) (*http.ServeMux, http.Handler) {
	named := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(name)) }
	}
	return publicRoutes(set, named("up"), named("ready"), named("metrics"), named("service"))
}

// Every request reaches the handler, status and redirect through
// serviceFirst that it reaches through the mux alone.
func TestServiceFirstRoutesAsTheMux(t *testing.T) {
	targets := []string{
		"/apps/1/events", "/apps/1/events?auth_key=k", "/app/key", "/up", "/ready", "/metrics", "/up/",
		"/reverb/up", "/reverb/ready", "/reverb/apps/1/events", "/", "/apps//1/events", "/apps/./1/events",
		"/apps/../up", "/apps/1/..", "/apps/1/.", "/apps/1/events/", "/%75p", "/apps/a%2Fb/events",
		"/apps/a%20b/events", "/apps/%61pps/events", "/a/..b/c", "/a/.b", "//", "/apps/1/events//",
	}
	for _, set := range []*Settings{{}, {Path: "/reverb"}, {HTTP: HTTP{}, MetricsAddr: "127.0.0.1:0"}} {
		mux, fast := routes(set)
		for _, target := range targets {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodConnect} {
				r := httptest.NewRequest(method, target, nil)
				want, got := httptest.NewRecorder(), httptest.NewRecorder()
				mux.ServeHTTP(want, r.Clone(r.Context()))
				fast.ServeHTTP(got, r.Clone(r.Context()))
				if got.Code != want.Code || got.Body.String() != want.Body.String() ||
					got.Header().Get("Location") != want.Header().Get("Location") {
					t.Errorf("path %q: %s %q: %d %q (Location %q), the mux gives %d %q (Location %q)", set.Path, method, target,
						got.Code, got.Body, got.Header().Get("Location"), want.Code, want.Body, want.Header().Get("Location"))
				}
			}
		}
	}
}

// cleanPath is http.ServeMux's canonical form of a path.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func FuzzIsCleanPath(f *testing.F) {
	for _, p := range []string{"/", "", "a", "/a/b", "/a/", "//", "/./", "/a/..", "/..a", "/a/.b/", "/a//b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want := p != "" && p[0] == '/' && cleanPath(p) == p
		if got := isCleanPath(p); got != want {
			t.Errorf("isCleanPath(%q) = %v, want %v", p, got, want)
		}
	})
}

// BenchmarkPublicRouting is the routing of an API request on the public
// listener to the service: through the mux alone, as before serviceFirst,
// and through serviceFirst.
func BenchmarkPublicRouting(b *testing.B) {
	mux, fast := routes(&Settings{})
	r := httptest.NewRequest(http.MethodPost, "/apps/app1/events?auth_key=key&auth_timestamp=1&auth_version=1.0", nil)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"mux", mux}, {"serviceFirst", fast}} {
		b.Run(tc.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				tc.h.ServeHTTP(w, r)
			}
		})
	}
}
