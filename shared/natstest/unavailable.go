package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Unavailable is a NATS server whose JetStream is not available yet, as on
// a fresh cluster before its meta leader is elected: every JetStream API
// request is answered 503 (10008, temporarily unavailable) and a publish
// to a stream subject gets no answer. Recover replaces it with a working
// JetStream server on the same port, where the clients reconnect.
type Unavailable struct {
	srv  *server.Server
	port int
	// Asked is closed when the first JetStream API request was answered.
	Asked <-chan struct{}
}

// StartUnavailable starts an Unavailable on a free loopback port; it stops
// when the test ends.
func StartUnavailable(tb testing.TB) *Unavailable {
	tb.Helper()
	port := FreePort(tb)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("natstest: server not ready in 10 s")
	}
	tb.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	asked := make(chan struct{})
	first := true
	const unavailable = `{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}`
	if _, err := nc.Subscribe("$JS.API.>", func(m *nats.Msg) {
		_ = m.Respond([]byte(unavailable))
		if first {
			first = false
			close(asked)
		}
	}); err != nil {
		tb.Fatalf("natstest: subscribe: %v", err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatalf("natstest: flush: %v", err)
	}
	tb.Cleanup(nc.Close)
	return &Unavailable{srv: s, port: port, Asked: asked}
}

// URL is the client URL, the same before and after Recover.
func (u *Unavailable) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", u.port) }

// Recover stops the unavailable server and starts a JetStream server on
// its port.
func (u *Unavailable) Recover(tb testing.TB) *server.Server {
	tb.Helper()
	u.srv.Shutdown()
	u.srv.WaitForShutdown()
	return StartOn(tb, u.port)
}

// JetStream connects to u with a client that reconnects until Recover and
// after, closed when the test ends, and returns its JetStream context.
func (u *Unavailable) JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(u.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return js
}

// CheckWaitsForJetStream runs start against an Unavailable and fails tb
// unless start is still waiting when JetStream first answers 503, and
// returns nil once JetStream has recovered.
func CheckWaitsForJetStream(tb testing.TB, start func(ctx context.Context, js jetstream.JetStream) error) {
	tb.Helper()
	u := StartUnavailable(tb)
	js := u.JetStream(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- start(ctx, js) }()
	select {
	case <-u.Asked:
	case err := <-done:
		tb.Fatalf("returned before JetStream answered: %v", err)
	}
	u.Recover(tb)
	if err := <-done; err != nil {
		tb.Fatalf("did not wait for JetStream: %v", err)
	}
}
