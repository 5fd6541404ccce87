package process

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/events"
	"github.com/herald-ws/herald/shared/logging"
	"github.com/herald-ws/herald/shared/presence"
)

// Settings are the process settings every Herald binary reads, with the same
// names, defaults and limits in each. A binary's settings struct holds it in
// a named field (a named field keeps its Check from being promoted).
type Settings struct {
	NATS NATS

	// StreamReplicas is 1 on a single NATS server, 3 on a cluster.
	StreamReplicas int `env:"HERALD_STREAM_REPLICAS" envDefault:"1"`
	// StreamMaxBytes caps one app's events stream.
	StreamMaxBytes int64 `env:"HERALD_STREAM_MAX_BYTES" envDefault:"1073741824"`
	// ShutdownTimeout bounds a graceful stop, from the signal to the exit.
	ShutdownTimeout time.Duration `env:"HERALD_SHUTDOWN_TIMEOUT" envDefault:"10s"`

	// Path is a prefix before /app and /apps, as Reverb's REVERB_SERVER_PATH:
	// "reverb", "/reverb" and "/reverb/" all mean "/reverb".
	Path string `env:"REVERB_SERVER_PATH"`

	HTTP HTTP

	// MetricsAddr, when set, serves /metrics there instead of on the
	// public port.
	MetricsAddr string `env:"HERALD_METRICS_ADDR"`
	// PprofAddr, when set, serves net/http/pprof there. Off by default.
	PprofAddr string `env:"HERALD_PPROF_ADDR"`

	LogLevel  string `env:"HERALD_LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"HERALD_LOG_FORMAT" envDefault:"text"`
	// LogPayloads adds event data where traffic is shown: the gateway's
	// debug lines and the status page's live tail.
	LogPayloads bool `env:"HERALD_LOG_PAYLOADS" envDefault:"false"`
}

// NATS is how a process reaches NATS. Credentials embedded in the URL
// (nats://user:password@host or a token) work as nats.go reads them.
type NATS struct {
	// URL is one server or a comma-separated list of a cluster's servers.
	URL string `env:"NATS_URL"`
	// Creds is a .creds file (user JWT and NKey seed), as NGS, Synadia
	// Cloud and operator-mode servers hand out.
	Creds string `env:"HERALD_NATS_CREDS"`
	// NKey is a file holding an NKey seed (SU…), for servers that list the
	// user's public NKey.
	NKey string `env:"HERALD_NATS_NKEY"`
	// TLSCA is a PEM file of the CAs to trust for the server's certificate;
	// TLSCert and TLSKey a client certificate for servers that ask for one.
	TLSCA   string `env:"HERALD_NATS_TLS_CA"`
	TLSCert string `env:"HERALD_NATS_TLS_CERT"`
	TLSKey  string `env:"HERALD_NATS_TLS_KEY"`
}

// HTTP bounds what one client may hold of an HTTP listener.
type HTTP struct {
	// ReadTimeout bounds reading one request, headers and body. A WebSocket
	// is not affected once upgraded.
	ReadTimeout time.Duration `env:"HERALD_HTTP_READ_TIMEOUT" envDefault:"30s"`
	// IdleTimeout closes a keep-alive connection that sends no request for
	// that long. The default is above the 60 s after which nginx and cloud
	// load balancers close their idle upstream connections, so that they
	// close first and never send on a connection being closed.
	IdleTimeout time.Duration `env:"HERALD_HTTP_IDLE_TIMEOUT" envDefault:"65s"`
	// MaxHeaderBytes bounds a request's header.
	MaxHeaderBytes int `env:"HERALD_HTTP_MAX_HEADER_BYTES" envDefault:"65536"`
}

// headerTimeout bounds reading a request's header: slow-header clients
// (slowloris) are cut at this, whatever the read timeout.
const headerTimeout = 10 * time.Second

// Check validates the settings and normalises Path. An embedded NATS
// (herald) does not need NATS_URL; every other binary does.
func (s *Settings) Check() error {
	s.Path = NormalizePath(s.Path)
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.StreamReplicas < 1 || s.StreamReplicas > 5 {
		bad("HERALD_STREAM_REPLICAS=%d must be 1 to 5", s.StreamReplicas)
	}
	if s.StreamMaxBytes < 1<<20 {
		bad("HERALD_STREAM_MAX_BYTES=%d is below 1 MiB (1048576)", s.StreamMaxBytes)
	}
	if s.ShutdownTimeout <= 0 {
		bad("HERALD_SHUTDOWN_TIMEOUT=%s must be positive", s.ShutdownTimeout)
	}
	if s.HTTP.ReadTimeout < time.Second {
		bad("HERALD_HTTP_READ_TIMEOUT=%s is below 1s", s.HTTP.ReadTimeout)
	}
	if s.HTTP.IdleTimeout < time.Second {
		bad("HERALD_HTTP_IDLE_TIMEOUT=%s is below 1s", s.HTTP.IdleTimeout)
	}
	if s.HTTP.MaxHeaderBytes < 4096 {
		bad("HERALD_HTTP_MAX_HEADER_BYTES=%d is below 4096", s.HTTP.MaxHeaderBytes)
	}
	if _, err := logging.New(nil, s.LogLevel, s.LogFormat); err != nil {
		errs = append(errs, err)
	}
	if err := s.NATS.check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (n NATS) check() error {
	var errs []error
	if (n.TLSCert == "") != (n.TLSKey == "") {
		errs = append(errs, errors.New("HERALD_NATS_TLS_CERT and HERALD_NATS_TLS_KEY go together: set both or neither"))
	}
	if n.Creds != "" && n.NKey != "" {
		errs = append(errs, errors.New("HERALD_NATS_CREDS and HERALD_NATS_NKEY are both set: use one"))
	}
	for _, f := range []struct{ name, path string }{
		{"HERALD_NATS_CREDS", n.Creds}, {"HERALD_NATS_NKEY", n.NKey}, {"HERALD_NATS_TLS_CA", n.TLSCA},
		{"HERALD_NATS_TLS_CERT", n.TLSCert}, {"HERALD_NATS_TLS_KEY", n.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	return errors.Join(errs...)
}

// NormalizePath turns REVERB_SERVER_PATH's "reverb", "/reverb/" or "" into
// "/reverb" or "".
func NormalizePath(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return "/" + p
}

// checker is a settings struct, or a part of one, that validates itself.
type checker interface{ Check() error }

// Parse reads a binary's settings struct T from the environment (errors
// name the variable, see appconf.Parse), then checks T and every struct it
// embeds or holds that has a Check method, reporting every problem at once.
func Parse[T any]() (T, error) {
	v, err := appconf.Parse[T]()
	if err != nil {
		return v, fmt.Errorf("reading settings: %w", err)
	}
	if err := check(reflect.ValueOf(&v).Elem()); err != nil {
		return v, fmt.Errorf("reading settings: %w", err)
	}
	return v, nil
}

// check calls Check on v's struct fields that have one (or looks inside
// those that have none), then on v itself.
func check(v reflect.Value) error {
	var errs []error
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Struct || !v.Type().Field(i).IsExported() {
			continue
		}
		if c, ok := f.Addr().Interface().(checker); ok {
			errs = append(errs, c.Check())
			continue
		}
		errs = append(errs, check(f))
	}
	if c, ok := v.Addr().Interface().(checker); ok {
		errs = append(errs, c.Check())
	}
	return errors.Join(errs...)
}

// RequireNATS is the error of a binary that joins NATS_URL when it is
// empty.
func (n NATS) RequireNATS() error {
	if n.URL == "" {
		return errors.New("NATS_URL is not set: the NATS server (or comma-separated cluster servers) to join")
	}
	return nil
}

// CheckPort validates a port setting.
func CheckPort(name string, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("%s=%d is not a port (1 to 65535)", name, port)
	}
	return nil
}

// ReverbServer is Reverb's listen address, which herald and the gateway
// read: the WebSocket port (and, in herald, the HTTP API's).
type ReverbServer struct {
	Host string `env:"REVERB_SERVER_HOST" envDefault:"0.0.0.0"`
	Port int    `env:"REVERB_SERVER_PORT" envDefault:"8080"`
}

// Check validates the port.
func (r *ReverbServer) Check() error { return CheckPort("REVERB_SERVER_PORT", r.Port) }

// Addr is host:port.
func (r *ReverbServer) Addr() string { return JoinHostPort(r.Host, r.Port) }

// JoinHostPort is net.JoinHostPort for an int port.
func JoinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Stream is the events streams' installation-wide options.
func (s *Settings) Stream() events.StreamOptions {
	return events.StreamOptions{Replicas: s.StreamReplicas, MaxBytes: s.StreamMaxBytes}
}

// Presence is the presence streams' and buckets' options.
func (s *Settings) Presence() presence.Options {
	return presence.Options{Replicas: s.StreamReplicas}
}

// Apps reads the configured apps (REVERB_APP_* or HERALD_APPS_FILE).
func Apps() (*appconf.Registry, error) {
	e, err := appconf.ParseEnv()
	if err != nil {
		return nil, err
	}
	r, err := e.Registry()
	if err != nil {
		return nil, fmt.Errorf("app settings: %w", err)
	}
	return r, nil
}
