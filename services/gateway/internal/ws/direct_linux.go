package ws

import (
	"net"
	"syscall"
	"unsafe"
)

// directConn returns the raw connection of nc, for writes that do not wait,
// or nil when nc has none (TLS, net.Pipe in tests).
func directConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// direct holds the vector of one writev that does not wait, and its
// outcome; it lives in the pooled batchWriter so that an attempt allocates
// nothing (a closure given to RawConn.Control would escape).
type direct struct {
	iov   []syscall.Iovec
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) // writev, bound once
}

// writev makes one writev on the non-blocking socket fd. It is a raw
// system call, without the runtime's entry into and exit from a blocking
// one: the socket is non-blocking, so the call returns as soon as the
// kernel has copied what fits, and telling the scheduler that a blocking
// call began would only have its monitor thread wake every 20 µs to see
// whether the worker's P should be handed to another thread (during a
// fan-out, a writev every few µs kept it at that pace). The same blindness
// means nothing takes the P from a worker that is never out of work: the
// pool's workers yield every yieldEvery writers (pool.go).
func (d *direct) writev(fd uintptr) {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&d.iov[0])), uintptr(len(d.iov)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			n = 0
		}
		d.n, d.errno = int(n), errno
		return
	}
}

// writeNow writes as much of bufs as the socket takes at once, in one
// writev, without waiting and without a deadline. A full socket is not an
// error: it returns 0 then. bufs holds at most 2*maxBatch buffers, under
// the kernel's IOV_MAX (1024).
func (bw *batchWriter) writeNow(raw syscall.RawConn, bufs net.Buffers) (int, error) {
	d := &bw.direct
	if d.fn == nil {
		d.fn = d.writev
	}
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		d.iov = append(d.iov, v)
	}
	if len(d.iov) == 0 {
		return 0, nil
	}
	// Control, not Write: the writer is the only goroutine that writes to
	// the connection, so Write's lock is not needed, and a write that never
	// waits has no use for the poller's reset of its readiness (pollReset,
	// 3-4% of a fan-out's CPU). Control still holds the descriptor open.
	err := raw.Control(d.fn)
	clear(d.iov) // no reference to the frames between batches
	d.iov = d.iov[:0]
	if err == nil && d.errno != 0 && d.errno != syscall.EAGAIN {
		err = d.errno
	}
	return d.n, err
}
