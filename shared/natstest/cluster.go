package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster runs n JetStream servers on loopback, routed into one
// cluster, each with its own store, and returns once every server is ready
// and JetStream has a meta leader. They are stopped when the test ends; a
// test may shut one down earlier to play a lost node.
func StartCluster(tb testing.TB, n int) []*server.Server {
	tb.Helper()
	return NewCluster(tb, n).Servers()
}

// Cluster is n routed JetStream servers whose nodes a test can stop and
// start again, each on its own ports and store, as an operator restarts
// the nodes of a real cluster.
type Cluster struct {
	tb   testing.TB
	opts []server.Options

	mu      sync.Mutex
	servers []*server.Server // nil while a node is stopped
}

// NewCluster starts n servers and returns once the cluster is formed (see
// WaitFormed). Whatever still runs is stopped when the test ends. Each
// configure function may change every node's options (e.g. SyncAlways).
func NewCluster(tb testing.TB, n int, configure ...func(*server.Options)) *Cluster {
	tb.Helper()
	// A clustered JetStream server is ready only once it has met its
	// peers, so all start together, each routed to every cluster port,
	// picked beforehand; the client ports are fixed too, so that clients
	// find a restarted node where it was.
	routes := make([]*url.URL, n)
	c := &Cluster{tb: tb, opts: make([]server.Options, n), servers: make([]*server.Server, n)}
	for i := range n {
		port := FreePort(tb)
		routes[i] = &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		c.opts[i] = server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       FreePort(tb),
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: port},
		}
	}
	for i := range n {
		c.opts[i].Routes = routes
		for _, f := range configure {
			f(&c.opts[i])
		}
	}
	tb.Cleanup(func() {
		for i := range n {
			c.Stop(i)
		}
	})
	for i := range n {
		c.start(i)
	}
	c.WaitFormed()
	return c
}

// Servers returns the running servers (nil for a stopped node).
func (c *Cluster) Servers() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*server.Server(nil), c.servers...)
}

// URLs lists every node's client URL as NATS_URL takes a cluster, stopped
// nodes included.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// Stop shuts node i down (a clean stop: its store is flushed and kept).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Start starts node i again on its ports and store and waits until it
// accepts connections; WaitFormed waits for the cluster.
func (c *Cluster) Start(i int) {
	c.tb.Helper()
	c.start(i)
	s := c.Servers()[i]
	if !s.ReadyForConnections(20 * time.Second) {
		c.tb.Fatalf("natstest: server %d not ready in 20 s", i+1)
	}
}

func (c *Cluster) start(i int) {
	c.tb.Helper()
	opts := c.opts[i] // the server keeps and changes what it is given
	s, err := server.NewServer(&opts)
	if err != nil {
		c.tb.Fatalf("natstest: new server %d: %v", i+1, err)
	}
	go s.Start()
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
}

// WaitFormed waits until every node is ready, routes to all the others,
// and one of them leads JetStream's meta group.
func (c *Cluster) WaitFormed() {
	c.tb.Helper()
	servers := c.Servers()
	for i, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			c.tb.Fatalf("natstest: server %d not ready in 20 s", i+1)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !clustered(servers) {
		if time.Now().After(deadline) {
			c.tb.Fatalf("natstest: no JetStream meta leader among %d servers in 20 s", len(servers))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitHealthy waits until every node's health check passes: on a node
// that has just started, every stream and consumer it holds has caught up
// with its group, which is what a rolling restart waits for before it
// stops the next node.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for _, s := range c.Servers() {
		for {
			h := s.Healthz(nil)
			if h.Status == "ok" {
				break
			}
			if time.Now().After(deadline) {
				c.tb.Fatalf("natstest: %s not healthy in %s: %s", s.Name(), timeout, h.Error)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// clustered reports whether every server routes to all the others and one
// of them leads JetStream's meta group.
func clustered(servers []*server.Server) bool {
	leader := false
	for _, s := range servers {
		if s.NumRoutes() < len(servers)-1 || !s.JetStreamIsCurrent() {
			return false
		}
		leader = leader || s.JetStreamIsLeader()
	}
	return leader
}
