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
// nothing (a closure given to RawConn.Write would escape).
type direct struct {
	iov   []syscall.Iovec
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // writev, bound once
}

// writev makes one writev on the non-blocking socket fd. Returning true
// tells RawConn.Write that the attempt is over whatever it wrote: it never
// waits for the socket to take more.
func (d *direct) writev(fd uintptr) bool {
	for {
		n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&d.iov[0])), uintptr(len(d.iov)))
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			n = 0
		}
		d.n, d.errno = int(n), errno
		return true
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
	err := raw.Write(d.fn)
	clear(d.iov) // no reference to the frames between batches
	d.iov = d.iov[:0]
	if err == nil && d.errno != 0 && d.errno != syscall.EAGAIN {
		err = d.errno
	}
	return d.n, err
}
