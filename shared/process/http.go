package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// writeTimeout bounds writing one response: HTTP API answers are small, and
// a WebSocket is not affected once upgraded (gorilla clears the deadlines).
const writeTimeout = 60 * time.Second

// NewServer is an http.Server with the timeouts and header bound of the
// settings, logging through log.
func NewServer(h http.Handler, s HTTP, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(headerTimeout, s.ReadTimeout),
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// listeners are the process's HTTP servers: the public one, and /metrics
// and pprof on their own addresses when set.
type listeners struct {
	public, metrics, pprof net.Listener
	servers                []*http.Server
	lns                    []net.Listener
}

func listen(addr string, set *Settings, rt *Runtime, st *state) (*listeners, error) {
	l := &listeners{}
	var err error
	metrics := promhttp.HandlerFor(rt.Metrics, promhttp.HandlerOpts{})
	ready := func(w http.ResponseWriter, _ *http.Request) {
		status, err := st.ready(&rt.conns)
		body := map[string]string{"status": status}
		code := http.StatusOK
		if err != nil {
			code = http.StatusServiceUnavailable
			body["error"] = err.Error()
		}
		WriteJSON(w, code, body)
	}
	serveService := func(w http.ResponseWriter, r *http.Request) {
		svc := st.service.Load()
		if svc == nil {
			WriteError(w, http.StatusServiceUnavailable, "starting: not ready yet")
			return
		}
		(*svc).Handler().ServeHTTP(w, r)
	}
	_, public := publicRoutes(set, http.HandlerFunc(serveUp), http.HandlerFunc(ready), metrics, serveService)
	if l.public, err = l.open(addr, "the service's host and port settings", NewServer(public, set.HTTP, rt.Log)); err != nil {
		return nil, err
	}

	if set.MetricsAddr != "" {
		m := http.NewServeMux()
		m.Handle("GET /metrics", metrics)
		if l.metrics, err = l.open(set.MetricsAddr, "HERALD_METRICS_ADDR", NewServer(m, set.HTTP, rt.Log)); err != nil {
			return nil, err
		}
	}
	if set.PprofAddr != "" {
		m := http.NewServeMux()
		m.HandleFunc("/debug/pprof/", pprof.Index)
		m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		m.HandleFunc("/debug/pprof/profile", pprof.Profile)
		m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := NewServer(m, set.HTTP, rt.Log)
		srv.WriteTimeout = 0 // a CPU profile or trace streams for as long as asked
		if l.pprof, err = l.open(set.PprofAddr, "HERALD_PPROF_ADDR", srv); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// publicRoutes is the public listener's routing: the process's own paths
// (/up and /ready, also under the path prefix, and /metrics unless it has
// an address of its own) and the service behind every other path. It
// returns the mux and serviceFirst in front of it, which knows the own
// paths from the same registration.
func publicRoutes(set *Settings, up, ready, metrics http.Handler, service http.HandlerFunc) (*http.ServeMux, http.Handler) {
	mux := http.NewServeMux()
	own := map[string]bool{}
	handle := func(path string, h http.Handler) {
		mux.Handle("GET "+path, h)
		own[path] = true
	}
	for _, prefix := range uniq("", set.Path) {
		handle(prefix+"/up", up)
		handle(prefix+"/ready", ready)
	}
	if set.MetricsAddr == "" {
		handle("/metrics", metrics)
	}
	mux.HandleFunc("/", service)
	return mux, serviceFirst(mux, service, own)
}

// serviceFirst hands a request for the service straight to service, and
// anything else to mux, whose patterns include the service's ("/"). A
// request goes straight only where mux would send it to service as it is:
// not one of own, no escaping kept in the path, a clean path (mux
// redirects the others) and not CONNECT. The mux's pattern matching, a
// second routing in front of the service's own, was a measurable part of
// each API request.
func serviceFirst(mux *http.ServeMux, service http.HandlerFunc, own map[string]bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawPath == "" && r.Method != http.MethodConnect && !own[r.URL.Path] && isCleanPath(r.URL.Path) {
			service(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// isCleanPath reports whether p is an absolute path that http.ServeMux
// would not redirect: no empty, "." or ".." segment, except that it may
// end with "/".
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	last := 0 // the slash before the segment being read
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		seg := p[last+1 : i]
		if (seg == "" && i < len(p)) || seg == "." || seg == ".." {
			return false
		}
		last = i
	}
	return true
}

// open listens on addr for srv, setting naming addr in the error; after an
// error, what was opened before is closed.
func (l *listeners) open(addr, setting string, srv *http.Server) (net.Listener, error) {
	ln, err := listenAddr(addr, setting)
	if err != nil {
		l.closeAll()
		return nil, err
	}
	l.lns = append(l.lns, ln)
	l.servers = append(l.servers, srv)
	return ln, nil
}

func (l *listeners) closeAll() {
	for _, ln := range l.lns {
		_ = ln.Close()
	}
}

// serve starts every server; the channel gets the first that fails.
func (l *listeners) serve(log *slog.Logger) <-chan error {
	errc := make(chan error, len(l.servers))
	for i, srv := range l.servers {
		go func() {
			if err := srv.Serve(l.lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	return errc
}

func (l *listeners) shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range l.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping HTTP: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (l *listeners) metricsAddr() string { return addrOf(l.metrics) }
func (l *listeners) pprofAddr() string   { return addrOf(l.pprof) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// serveUp answers while the process runs, whatever NATS does: a liveness
// probe that restarts nothing during a NATS outage.
func serveUp(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// WriteError answers {"error": msg} with status code: the shape of every
// refusal.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, map[string]string{"error": msg})
}

// WriteJSON answers v as JSON with status code, uncached: the answers of
// a process's own endpoints (/up, /ready, /status, the status page).
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}
