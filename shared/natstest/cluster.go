package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
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
	// A clustered JetStream server is ready only once it has met its
	// peers, so all start together, each routed to every cluster port,
	// picked beforehand.
	routes := make([]*url.URL, n)
	ports := make([]int, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: picking a cluster port: %v", err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes[i] = &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))}
	}
	servers := make([]*server.Server, n)
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster:    server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			tb.Fatalf("natstest: new server %d: %v", i+1, err)
		}
		go s.Start()
		tb.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers[i] = s
	}
	for i, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			tb.Fatalf("natstest: server %d not ready in 20 s", i+1)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !clustered(servers) {
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: no JetStream meta leader among %d servers in 20 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return servers
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
