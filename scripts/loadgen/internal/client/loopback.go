package client

import (
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"
)

// LoopbackDialer returns a dialer that refuses every address outside the
// loopback range: the load generator only ever measures a server on the
// same machine, and a mistyped flag must not send load anywhere else.
func LoopbackDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			return checkLoopback(address)
		},
	}
}

func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", hostport)
	}
	return nil
}

// CheckURL accepts a URL of one of the given schemes whose host is a
// loopback IP or "localhost".
func CheckURL(raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return nil, fmt.Errorf("%s: scheme must be one of %v", raw, schemes)
	}
	if u.Hostname() == "localhost" {
		return u, nil
	}
	if err := checkLoopback(u.Hostname()); err != nil {
		return nil, fmt.Errorf("%s: %w", raw, err)
	}
	return u, nil
}
