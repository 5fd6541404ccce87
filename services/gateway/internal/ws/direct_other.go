//go:build !linux

package ws

import (
	"net"
	"syscall"
)

// directConn returns nil: off Linux every write goes through the poller
// with a deadline.
func directConn(net.Conn) syscall.RawConn { return nil }

type direct struct{}

// writeNow is never called without a raw connection.
func (bw *batchWriter) writeNow(syscall.RawConn, net.Buffers) (int, error) {
	panic("ws: direct write without a raw connection")
}
