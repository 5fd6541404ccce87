package publish

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Concurrent requests to one app share their stores: the events of the
// requests queued while the previous store of the stream is in flight go
// to JetStream as one fast batch (nats-server 2.14+, the stream's
// AllowBatchPublish), acknowledged by one PubAck for the whole batch
// instead of one per event. There is no timer: an idle stream's request is
// sent at once, alone, as a plain publish.
//
// The batch is sent with gap mode "fail": the stream stores its messages in
// order and, when one is refused or lost, stops there and acknowledges only
// the ones before it. A request whose events the PubAck covers is stored;
// any other outcome (a refused event, no PubAck within AttemptTimeout
// because the leader changed or a node was lost, NATS down) sends that
// request's events again on the per-event path, under the same message
// ids: whatever the batch did store is then recognised as a duplicate, and
// the per-event path's retries and errors apply as before.

// Fast batch reply subjects, as nats-server parses them (stream.go,
// getFastBatch): <inbox>.<batch id>.<flow>.<gap mode>.<seq>.<op>.$FI.
const (
	batchSuffix   = ".$FI"
	batchGapFail  = "fail"
	batchOpStart  = "0"
	batchOpAppend = "1"
	batchOpCommit = "2"
)

// maxBatch bounds the messages of one batch, and is the flow control
// window asked for: the server acknowledges every maxBatch messages (at
// most 500), so a batch gets no flow acknowledgement before its PubAck.
const maxBatch = 256

// job is one request's events (of distinct channels) waiting for a batch.
type job struct {
	msgs []*nats.Msg
	// done receives the outcome: stored, notStored, or lead (this job is
	// now first in the queue and its goroutine sends the next batch).
	done chan outcome
}

type outcome uint8

const (
	stored outcome = iota
	notStored
	lead
)

// jobs are reused: a job and its channel are two allocations a request
// would otherwise make. A job goes back once its request has its outcome;
// its channel is empty then.
var jobs = sync.Pool{New: func() any { return &job{done: make(chan outcome, 1)} }}

// batcher queues the jobs of one stream; one batch of it is in flight at a
// time, sent by the goroutine of one of its jobs.
type batcher struct {
	acks  *acker
	nc    *nats.Conn
	mu    sync.Mutex
	busy  bool // a batch is in flight; the queue's goroutines wait
	queue []*job
	// sending holds the jobs of the batch in flight, kept between
	// batches (only the leader uses it).
	sending []*job
}

// store sends msgs in a batch with whatever else is queued and reports
// whether all of them were acknowledged as stored. False means not known:
// the caller sends them again on the per-event path.
func (b *batcher) store(msgs []*nats.Msg) bool {
	j := jobs.Get().(*job)
	j.msgs = msgs
	defer func() {
		j.msgs = nil
		jobs.Put(j)
	}()
	b.mu.Lock()
	b.queue = append(b.queue, j)
	if b.busy {
		b.mu.Unlock()
		if o := <-j.done; o != lead {
			return o == stored
		}
	} else {
		b.busy = true
		b.mu.Unlock()
	}
	// j leads: it is first in the queue. Alone there, it lets the
	// goroutines that are ready to run go first: requests answered
	// together come back together, and they would otherwise go one alone
	// and the rest in the next batch.
	b.mu.Lock()
	if len(b.queue) == 1 {
		b.mu.Unlock()
		runtime.Gosched()
		b.mu.Lock()
	}
	n, size := 0, 0
	for n < len(b.queue) && (n == 0 || size+len(b.queue[n].msgs) <= maxBatch) {
		size += len(b.queue[n].msgs)
		n++
	}
	batch := append(b.sending[:0], b.queue[:n]...)
	b.queue = b.queue[n:]
	b.mu.Unlock()

	covered := b.send(batch, size)
	mine := notStored
	for _, o := range batch {
		res := notStored
		if len(o.msgs) <= covered {
			res = stored
		}
		covered -= len(o.msgs)
		if o == j {
			mine = res
		} else {
			o.done <- res // o may be reused from here on
		}
	}
	clear(batch)
	// Hand the next batch to the first job still waiting.
	b.mu.Lock()
	b.sending = batch[:0]
	if len(b.queue) == 0 {
		b.busy = false
		b.queue = b.queue[:0]
	} else {
		b.queue[0].done <- lead
	}
	b.mu.Unlock()
	return mine == stored
}

// send publishes the messages of jobs (size in all) and returns how many of
// them, from the first, were acknowledged as stored.
func (b *batcher) send(jobs []*job, size int) int {
	if !b.nc.IsConnected() {
		return 0
	}
	w := b.acks.register(size)
	defer b.acks.unregister(w)
	seq := 0
	for _, j := range jobs {
		for _, m := range j.msgs {
			seq++
			m.Reply = w.reply(seq, size)
			if err := b.nc.PublishMsg(m); err != nil {
				return 0
			}
		}
	}
	t := time.NewTimer(AttemptTimeout)
	defer t.Stop()
	select {
	case n := <-w.result:
		return n
	case <-t.C:
		return 0
	}
}

// acker receives the acknowledgements of this process's batches on one
// wildcard subscription.
type acker struct {
	prefix string // the inbox with a trailing dot
	idBase string // unique per acker: batch ids are unique per stream
	mu     sync.Mutex
	seq    uint64
	wait   map[string]*waiter
}

// waiter is one batch in flight.
type waiter struct {
	id     string
	prefix string // acker.prefix + id
	result chan int
}

func newAcker(nc *nats.Conn, idBase string) (*acker, error) {
	a := &acker{prefix: nc.NewInbox() + ".", idBase: idBase, wait: map[string]*waiter{}}
	if _, err := nc.Subscribe(a.prefix+">", a.handle); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *acker) register(size int) *waiter {
	a.mu.Lock()
	a.seq++
	id := a.idBase + strconv.FormatUint(a.seq, 36)
	w := &waiter{id: id, prefix: a.prefix + id, result: make(chan int, 1)}
	a.wait[id] = w
	a.mu.Unlock()
	return w
}

func (a *acker) unregister(w *waiter) {
	a.mu.Lock()
	delete(a.wait, w.id)
	a.mu.Unlock()
}

// reply is the reply subject of message seq of a batch of size: a lone
// message is a plain publish.
func (w *waiter) reply(seq, size int) string {
	if size == 1 {
		return w.prefix
	}
	op := batchOpAppend
	switch seq {
	case 1:
		op = batchOpStart
	case size:
		op = batchOpCommit
	}
	return w.prefix + "." + strconv.Itoa(maxBatch) + "." + batchGapFail + "." + strconv.Itoa(seq) + "." + op + batchSuffix
}

// handle reads one answer of the stream to a batch: flow control and gap
// reports are skipped, a PubAck gives how many messages are stored, and
// anything else (an error, no responders) ends the batch with none known
// stored.
func (a *acker) handle(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, a.prefix)
	if !ok {
		return
	}
	id, tail, _ := strings.Cut(rest, ".")
	a.mu.Lock()
	w := a.wait[id]
	a.mu.Unlock()
	if w == nil {
		return // an answer after the batch ended
	}
	var n int
	if tail == "" {
		n = 1 // a plain publish
	} else if seq, ok := replySeq(tail); ok {
		n = seq
	}
	switch {
	case bytes.HasPrefix(m.Data, []byte(`{"type":"ack"`)), bytes.HasPrefix(m.Data, []byte(`{"type":"gap"`)):
		return
	case bytes.HasPrefix(m.Data, []byte(`{"stream":`)) && !bytes.Contains(m.Data, []byte(`"error"`)):
		// The PubAck of a batch carries the count of messages it covers
		// when the commit found them stored already; otherwise it answers
		// the last message stored, which is n.
		if c, ok := pubAckCount(m.Data); ok {
			n = c
		}
	default:
		n = 0
	}
	select {
	case w.result <- n:
	default:
	}
}

// replySeq is the batch sequence in the tail of a reply subject:
// <flow>.<gap mode>.<seq>.<op>.$FI.
func replySeq(tail string) (int, bool) {
	tail, ok := strings.CutSuffix(tail, batchSuffix)
	if !ok {
		return 0, false
	}
	parts := strings.Split(tail, ".")
	if len(parts) != 4 {
		return 0, false
	}
	seq, err := strconv.Atoi(parts[2])
	return seq, err == nil
}

// pubAckCount reads the "count" a batch's PubAck may end with.
func pubAckCount(data []byte) (int, bool) {
	const key = `"count":`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return 0, false
	}
	c, err := strconv.Atoi(string(bytes.TrimSpace(rest[:end])))
	return c, err == nil
}
