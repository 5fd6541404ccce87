package replay

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// inbox receives the answers of every batch Direct Get on one wildcard
// subscription and hands each to the read that asked, by the last token of
// its reply subject. A subscription per read (SubscribeSync) costs a SUB and
// an UNSUB on the server and a 64K-slot channel (512 KB) on the client; at a
// read or two per channel subscribed, a wave of new channels spent most of
// its CPU clearing and collecting those channels.
type inbox struct {
	nc     *nats.Conn
	prefix string // "<inbox>." ; answers come to prefix + token

	once sync.Once
	sub  *nats.Subscription
	err  error

	next    atomic.Uint64
	mu      sync.Mutex
	waiting map[string]*answers
}

// answers collects one read's messages; ready is signalled after each.
type answers struct {
	mu    sync.Mutex
	msgs  []*nats.Msg
	ready chan struct{}
}

func newInbox(nc *nats.Conn) *inbox {
	return &inbox{nc: nc, prefix: nc.NewInbox() + ".", waiting: map[string]*answers{}}
}

// open returns the reply subject of a new read and its answers; close
// forgets them.
func (b *inbox) open() (string, *answers, func(), error) {
	b.once.Do(func() {
		b.sub, b.err = b.nc.Subscribe(b.prefix+"*", b.route)
		if b.err == nil {
			// Answers of a large batch arrive faster than a busy gateway
			// reads them: only memory bounds what may wait.
			b.err = b.sub.SetPendingLimits(-1, -1)
		}
	})
	if b.err != nil {
		return "", nil, nil, fmt.Errorf("subscribing to direct get answers: %w", b.err)
	}
	token := strconv.FormatUint(b.next.Add(1), 36)
	a := &answers{ready: make(chan struct{}, 1)}
	b.mu.Lock()
	b.waiting[token] = a
	b.mu.Unlock()
	return b.prefix + token, a, func() {
		b.mu.Lock()
		delete(b.waiting, token)
		b.mu.Unlock()
	}, nil
}

func (b *inbox) route(m *nats.Msg) {
	token := m.Subject[len(b.prefix):]
	b.mu.Lock()
	a := b.waiting[token]
	b.mu.Unlock()
	if a == nil {
		return // a read that gave up
	}
	a.mu.Lock()
	a.msgs = append(a.msgs, m)
	a.mu.Unlock()
	select {
	case a.ready <- struct{}{}:
	default:
	}
}

// take moves the messages received so far into buf.
func (a *answers) take(buf []*nats.Msg) []*nats.Msg {
	a.mu.Lock()
	buf = append(buf, a.msgs...)
	clear(a.msgs)
	a.msgs = a.msgs[:0]
	a.mu.Unlock()
	return buf
}
