// Package presencetest runs the presence service inside a test, on the
// test's embedded NATS server (shared/natstest), with timings short enough
// for tests. The tests of every module that needs global channel state start
// it through here.
package presencetest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/presence/service"
	"github.com/herald-ws/herald/shared/appconf"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options are the service's options for apps with test timings: a standby
// takes over within a second, state is flushed every 10 ms, drains hold
// members for a second. Change fields before Start.
func Options(apps *appconf.Registry) service.Options {
	return service.Options{
		Apps:              apps,
		LockTTL:           time.Second,
		FlushInterval:     10 * time.Millisecond,
		DrainGrace:        time.Second,
		CountInterval:     100 * time.Millisecond,
		ReconcileInterval: 500 * time.Millisecond,
	}
}

// Service is a presence service running for a test.
type Service struct {
	*service.Service
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Start runs a presence service with opt on a connection of its own to s
// (named opt.Instance), and returns once it answers member requests. The end
// of the test stops it.
func Start(t testing.TB, s *server.Server, opt service.Options) *Service {
	t.Helper()
	name := opt.Instance
	if name == "" {
		name = "presence"
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatalf("presence service: connecting: %v", err)
	}
	opt.NC = nc
	svc, err := service.New(opt)
	if err != nil {
		nc.Close()
		t.Fatalf("presence service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps := &Service{Service: svc, nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ps.done)
		if err := svc.Run(ctx); err != nil {
			t.Errorf("presence service %s: %v", name, err)
		}
	}()
	t.Cleanup(ps.Stop)
	Serving(t, s)
	return ps
}

// Stop ends the service cleanly: it persists, acknowledges and hands the
// lock over.
func (ps *Service) Stop() {
	ps.once.Do(func() {
		ps.cancel()
		<-ps.done
		ps.nc.Close()
	})
}

// Crash cuts the service off NATS first: nothing more is persisted or
// acknowledged, and its lock is left to expire.
func (ps *Service) Crash() {
	ps.once.Do(func() {
		ps.nc.Close()
		ps.cancel()
		<-ps.done
	})
}

// Serving waits until a presence service on s answers member requests: it
// is active and has applied every operation stored when its term began. A
// presence subscribe made before that would spend part of its timeout on the
// service's start.
func Serving(t testing.TB, s *server.Server) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name("presence probe"))
	if err != nil {
		t.Fatalf("presence probe: connecting: %v", err)
	}
	defer nc.Close()
	req, _ := json.Marshal(presence.MembersRequest{App: "probe", Channel: "presence-probe", Gateway: "probe", SocketID: "0.0"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := nc.Request(names.PresenceMembersSubject, req, time.Second)
		var rep presence.MembersReply
		if err == nil && json.Unmarshal(m.Data, &rep) == nil && rep.Status == presence.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no presence service answers member requests within 10 s (last: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
