package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/herald-ws/herald/services/presence/internal/state"
	"github.com/herald-ws/herald/shared/ensure"
	"github.com/herald-ws/herald/shared/names"
	"github.com/herald-ws/herald/shared/natstest"
	"github.com/herald-ws/herald/shared/poll"
	"github.com/herald-ws/herald/shared/presence"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func setup(t *testing.T) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s := natstest.Start(t)
	js, err := jetstream.New(natstest.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return s, js
}

// run starts a service and stops it when the test ends (or when the
// returned function is called).
func run(t *testing.T, s *server.Server, opt Options) (*Service, func()) {
	t.Helper()
	opt.NC = natstest.Connect(t, s)
	if opt.LockTTL == 0 {
		opt.LockTTL = time.Second
	}
	opt.FlushInterval = 10 * time.Millisecond
	svc, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	stop := background(t, svc, func(err error) {
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	poll.Until(t, poll.Patience, "the service is active", svc.Active)
	return svc, stop
}

// background runs svc until the test ends or stop is called; ended gets
// what Run returned.
func background(t *testing.T, svc *Service, ended func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ended(svc.Run(ctx))
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// fakeGateway registers a heartbeat by hand and publishes raw operations.
type fakeGateway struct {
	t   *testing.T
	js  jetstream.JetStream
	nc  *nats.Conn
	id  string
	reg uint64
}

func register(t *testing.T, s *server.Server, id string) *fakeGateway {
	t.Helper()
	nc := natstest.Connect(t, s)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := ensure.Bucket(ctx, js, presence.GatewaysBucketConfig(presence.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ensure.Stream(ctx, js, presence.OpsStreamConfig(presence.Options{})); err != nil {
		t.Fatal(err)
	}
	reg, err := kv.Create(ctx, names.GatewayKey(id), []byte(`{}`), jetstream.KeyTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, js: js, nc: nc, id: id, reg: reg}
	g.publish(presence.Op{Op: presence.Snapshot, SnapshotID: "s", Last: true, Reg: reg})
	return g
}

func (g *fakeGateway) publish(op presence.Op) uint64 {
	g.t.Helper()
	op.Gateway = g.id
	m, err := op.Msg("")
	if err != nil {
		g.t.Fatal(err)
	}
	ack, err := g.js.PublishMsg(context.Background(), m)
	if err != nil {
		g.t.Fatal(err)
	}
	return ack.Sequence
}

func (g *fakeGateway) members(app, channel string, seq uint64) presence.MembersReply {
	g.t.Helper()
	return g.membersFor(app, channel, "", seq)
}

// membersFor asks for a channel's members as of the join of socket at seq.
func (g *fakeGateway) membersFor(app, channel, socket string, seq uint64) presence.MembersReply {
	g.t.Helper()
	b, _ := json.Marshal(presence.MembersRequest{App: app, Channel: channel, Gateway: g.id, SocketID: socket, OpSeq: seq})
	var rep presence.MembersReply
	var err error
	poll.Until(g.t, poll.Patience, "a member list", func() bool {
		var m *nats.Msg
		if m, err = g.nc.Request(names.PresenceMembersSubject, b, time.Second); err != nil {
			return false
		}
		return json.Unmarshal(m.Data, &rep) == nil
	})
	return rep
}

func TestMembersRequests(t *testing.T) {
	s, _ := setup(t)
	run(t, s, Options{})
	g := register(t, s, "gw-1")

	seq := g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1",
		UserInfo: json.RawMessage(`{"n":1}`)})
	rep := g.members("a", "presence-r", seq)
	if rep.Status != presence.StatusOK || string(rep.Members["u1"]) != `{"n":1}` || rep.Seq == 0 {
		t.Fatalf("reply %+v", rep)
	}
	if rep := g.members("a", "presence-empty", seq); rep.Status != presence.StatusOK || len(rep.Members) != 0 {
		t.Fatalf("empty channel reply %+v", rep)
	}

	// A gateway with no heartbeat is not let in.
	ghost := register(t, s, "gw-ghost")
	kv, _ := ghost.js.KeyValue(context.Background(), names.GatewaysBucket)
	_ = kv.Purge(context.Background(), names.GatewayKey("gw-ghost"))
	poll.Until(t, poll.Patience, "the ghost's joins are refused", func() bool {
		seq := ghost.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "9.1", UserID: "u9"})
		return ghost.membersFor("a", "presence-r", "9.1", seq).Status == presence.StatusRefused
	})
}

func TestMalformedOperationsAreDropped(t *testing.T) {
	s, _ := setup(t)
	run(t, s, Options{})
	g := register(t, s, "gw-1")
	if _, err := g.js.Publish(context.Background(), names.PresenceOpSubject("gw-1"), []byte(`{"op":"nonsense"}`)); err != nil {
		t.Fatal(err)
	}
	seq := g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "news", SocketID: "1.1"})
	if rep := g.members("a", "news", seq); rep.Status != presence.StatusOK {
		t.Fatalf("reply %+v", rep)
	}
	ops, _ := g.js.Stream(context.Background(), names.PresenceOpsStream)
	poll.Until(t, poll.Patience, "every operation acknowledged", func() bool {
		info, err := ops.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
}

func TestLostOperationsAskForSnapshots(t *testing.T) {
	s, js := setup(t)
	_, stop := run(t, s, Options{})
	g := register(t, s, "gw-1")
	seq := g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "news", SocketID: "1.1"})
	g.members("a", "news", seq)
	stop()

	// While no instance runs, operations are dropped (the stream's limit).
	for i := 0; i < 3; i++ {
		g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "news", SocketID: "1.2"})
	}
	ops, _ := js.Stream(context.Background(), names.PresenceOpsStream)
	if err := ops.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	resync, err := g.nc.SubscribeSync(names.PresenceResyncSubject)
	if err != nil {
		t.Fatal(err)
	}
	run(t, s, Options{})
	if _, err := resync.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no snapshot request: %v", err)
	}
}

func TestRecreatedOpsStream(t *testing.T) {
	s, js := setup(t)
	_, stop := run(t, s, Options{})
	g := register(t, s, "gw-1")
	seq := g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.1", UserID: "u1"})
	g.members("a", "presence-r", seq)
	stop()

	// The stream is deleted and created anew: its sequences start over,
	// below those the state recorded.
	if err := js.DeleteStream(context.Background(), names.PresenceOpsStream); err != nil {
		t.Fatal(err)
	}
	run(t, s, Options{})
	seq = g.publish(presence.Op{Op: presence.Join, App: "a", Channel: "presence-r", SocketID: "1.2", UserID: "u2"})
	rep := g.members("a", "presence-r", seq)
	if _, ok := rep.Members["u2"]; !ok || len(rep.Members) != 2 {
		t.Fatalf("members after the stream was recreated: %+v", rep)
	}
}

func TestFencedStore(t *testing.T) {
	_, js := setup(t)
	ctx := context.Background()
	kv, err := ensure.Bucket(ctx, js, presence.StateBucketConfig(presence.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := newStore(ctx, js, kv)
	if err := old.fence(ctx, presence.Meta{Instance: "old", Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := old.write(ctx, []state.Write{{Key: "ch.a.x", Value: []byte(`{}`)}, {Key: "ch.a.y", Value: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	cur, _ := newStore(ctx, js, kv)
	if err := cur.fence(ctx, presence.Meta{Instance: "new", Term: 2}); err != nil {
		t.Fatal(err)
	}
	if err := old.write(ctx, []state.Write{{Key: "ch.a.z", Value: []byte(`{}`)}}); !errors.Is(err, errFenced) {
		t.Fatalf("deposed write: err %v, want errFenced", err)
	}
	if err := cur.write(ctx, []state.Write{{Key: "ch.a.z", Value: []byte(`{}`)}, {Key: "ch.a.x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "ch.a.x"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("purged key: %v", err)
	}
}

func TestUpHandler(t *testing.T) {
	s, _ := setup(t)
	svc, _ := run(t, s, Options{Instance: "p-up"})
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/up", nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || body["role"] != "active" {
		t.Fatalf("GET /up: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/up", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /up: %d", rec.Code)
	}
}
