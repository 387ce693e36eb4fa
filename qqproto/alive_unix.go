//go:build unix

package qqproto

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// closedByServer reports whether the server has closed a kept-alive
// connection (or sent on it unasked, which it does only before closing)
// while it sat in the pool. One non-blocking peek, so that a request is
// never written on a connection known to be dead: the write would succeed
// into the kernel, the reply would never come, and the attempt would be
// lost for nothing.
func closedByServer(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		// TLS: a peek at the socket would also see records the server may
		// send unasked (session tickets), so the connection is used as it
		// is; if the server closed it, the attempt fails and is retried
		// with the same SEQ.
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var buf [1]byte
	dead := false
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the connection is idle and open.
		dead = !errors.Is(rerr, unix.EAGAIN) || n > 0
		return true
	})
	return dead || err != nil
}
