package ws

import (
	"bytes"
	"runtime"
	"sync"
)

// The writers of sockets that take direct writes (Linux TCP) have no
// goroutine of their own while their socket has room: a writer with frames
// queued waits in the pool's ready list, and one of a few workers writes its
// whole queue in one writev that does not wait. A fan-out of one event to
// 1,000 connections then costs no goroutine start and no wake per
// connection (about a sixth of a frame's CPU with a goroutine per burst),
// and frames that arrive while a writer waits its turn leave with it.
// When a socket is full, what it did not take goes to a flusher goroutine
// of that writer (flush), which waits for the client under WriteTimeout as
// before, so a slow client never holds a worker.

// flushPool is the ready list and its workers.
type flushPool struct {
	mu    sync.Mutex
	wake  sync.Cond
	ready []*Writer // from head on; each writer at most once (its flushing)
	head  int
	// idle workers wait on wake; add signals one per writer it adds, and
	// counts it as no longer idle.
	idle, workers, max int
	// free holds queue slices for writers that start flushing, so that
	// queueing a frame allocates nothing.
	free [][]item
}

// maxFree bounds the queue slices kept in the pool.
const maxFree = 1024

var pool = newFlushPool(runtime.GOMAXPROCS(0))

func newFlushPool(workers int) *flushPool {
	p := &flushPool{max: max(1, workers)}
	p.wake.L = &p.mu
	return p
}

// add puts w in the ready list, with a queue slice if it has none. w.mu is
// held and w.flushing set.
func (p *flushPool) add(w *Writer) {
	p.mu.Lock()
	if w.queue == nil && len(p.free) > 0 {
		w.queue = p.free[len(p.free)-1]
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
	}
	if p.head >= 1024 && 2*p.head >= len(p.ready) {
		// The list never emptied: move what waits to its start.
		n := copy(p.ready, p.ready[p.head:])
		clear(p.ready[n:])
		p.ready, p.head = p.ready[:n], 0
	}
	p.ready = append(p.ready, w)
	switch {
	case p.idle > 0:
		p.idle--
		p.wake.Signal()
	case p.workers < p.max:
		p.workers++
		go p.work()
	}
	p.mu.Unlock()
}

// putFree keeps an empty queue slice for a later writer.
func (p *flushPool) putFree(q []item) {
	if q == nil || cap(q) > maxKept {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxFree {
		p.free = append(p.free, q[:0])
	}
	p.mu.Unlock()
}

// work is a worker: it writes the ready writers' queues, one writer at a
// time, and waits when none is ready. Workers live as long as the process.
func (p *flushPool) work() {
	bw := new(batchWriter)
	visits := 0
	p.mu.Lock()
	for {
		if p.head == len(p.ready) {
			clear(p.ready)
			p.ready, p.head = p.ready[:0], 0
			p.idle++
			p.wake.Wait()
			continue
		}
		w := p.ready[p.head]
		p.ready[p.head] = nil
		p.head++
		p.mu.Unlock()
		w.flushOnce(bw)
		if visits++; visits%yieldEvery == 0 {
			// A worker's writevs are raw system calls (direct_linux.go),
			// which the scheduler does not see: without a yield, a worker
			// that always finds a writer ready keeps its P for the whole
			// 10 ms slice, and the API, NATS and the hub wait that long.
			runtime.Gosched()
		}
		p.mu.Lock()
	}
}

// yieldEvery is how many writers a worker visits before it lets the other
// goroutines run: about 200 µs of writevs of one frame.
const yieldEvery = 32

// flushOnce writes what w has queued without waiting, on a pool worker. A
// writer whose queue grew meanwhile goes back to the end of the ready list;
// one whose socket is full gets a flusher of its own for the rest.
func (w *Writer) flushOnce(bw *batchWriter) {
	w.mu.Lock()
	if w.aborted || len(w.queue) == 0 {
		aborted := w.aborted
		w.endFlushLocked(nil)
		w.mu.Unlock()
		if aborted {
			w.finish()
		}
		return
	}
	batch, final := w.takeLocked(bw)
	w.mu.Unlock()

	left, err := w.writeSome(bw, batch)
	w.mu.Lock()
	// Abort leaves the end of the connection to whoever has its writes.
	end := err != nil || w.aborted
	switch {
	case end:
		w.endFlushLocked(nil)
	case len(left) > 0:
		// The socket is full: the rest goes first, then what was queued
		// meanwhile, on a flusher that waits for the client. The rest is
		// not counted in queued: like a batch taken, it is being written.
		own := batches.Get().(*batchWriter)
		q := append(append(own.queue[:0], left...), w.queue...)
		own.queue = nil
		clear(w.queue)
		pool.putFree(w.queue)
		w.queue = q
		flushers.Add(1)
		go w.flush(own)
	case final:
	case len(w.queue) == 0:
		w.endFlushLocked(nil)
	default:
		pool.add(w)
	}
	w.mu.Unlock()
	clear(batch) // drop references to frames for the garbage collector
	bw.spare = batch[:0]
	if end {
		w.finish()
		return
	}
	if final && len(left) == 0 {
		w.sentClose(nil)
	}
}

// writeSome writes batch in writevs that do not wait, up to maxBatch frames
// each, and returns what the socket did not take: the rest of a frame it
// took in part (as items without a header), then the frames after it.
func (w *Writer) writeSome(bw *batchWriter, batch []item) ([]item, error) {
	for len(batch) > 0 {
		n := min(len(batch), maxBatch)
		bufs, text := bw.vector(batch[:n])
		total := bufsLen(bufs)
		wrote, err := bw.writeNow(w.raw, bufs)
		if f := wroteNow.Load(); f != nil {
			(*f)(wrote, total)
		}
		clear(bufs)
		if w.opt.BytesSent != nil && wrote > 0 {
			w.opt.BytesSent.Add(float64(wrote))
		}
		if err != nil {
			return nil, err
		}
		var left []item
		if wrote < total {
			left, text = restOf(batch[:n], wrote)
			left = append(left, batch[n:]...)
		}
		if w.opt.Sent != nil && text > 0 {
			w.opt.Sent.Add(float64(text))
		}
		if left != nil {
			return left, nil
		}
		batch = batch[n:]
	}
	return nil, nil
}

// restOf returns what is left of items after the first wrote bytes of
// their frames went out, and how many text frames went out whole.
func restOf(items []item, wrote int) (left []item, text int) {
	for i, it := range items {
		h := 0
		if !it.rest {
			h = headerLen(len(it.b))
		}
		if wrote >= h+len(it.b) {
			wrote -= h + len(it.b)
			if it.op == opText {
				text++
			}
			continue
		}
		if wrote < h {
			var buf [maxHeader]byte
			hdr := appendHeader(buf[:0], it.op, len(it.b))
			op := opCont // the frame is counted with its payload
			if len(it.b) == 0 {
				op = it.op
			}
			left = append(left, item{op: op, b: bytes.Clone(hdr[wrote:]), rest: true})
			if len(it.b) > 0 {
				left = append(left, item{op: it.op, b: it.b, rest: true})
			}
		} else {
			left = append(left, item{op: it.op, b: it.b[wrote-h:], rest: true})
		}
		return append(left, items[i+1:]...), text
	}
	return nil, text
}
