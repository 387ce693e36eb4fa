//go:build unix

package xmppcomp

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// framedConn is a TCP connection whose reads end at the end of a stanza:
// it peeks at what the kernel holds (MSG_PEEK), finds where the first
// stanza ends (frameScanner), and takes only that much, so that the next
// stanza stays in the socket until it is asked for. Two system calls per
// stanza instead of one per burst.
type framedConn struct {
	net.Conn
	raw  syscall.RawConn
	scan frameScanner
	peek []byte
}

// framed wraps nc, a TCP connection, so that each read ends at a stanza's
// end; other connections are returned as they are.
func framed(nc net.Conn, max int) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &framedConn{Conn: nc, raw: raw, peek: make([]byte, min(max, 64<<10))}
}

func (c *framedConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), c.peek[:min(len(c.peek), len(p))], unix.MSG_PEEK)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	switch {
	case err != nil: // the deadline, or the connection closed
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	k, _, next := c.scan.boundary(c.peek[:n])
	// The bytes are there: a plain read returns them all.
	var got int
	err = c.raw.Read(func(fd uintptr) bool {
		got, rerr = unix.Read(int(fd), p[:k])
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if got == k {
		c.scan = next
	} else if got > 0 {
		// Fewer than peeked: cannot happen with one reader, but then
		// the state is that after the bytes taken.
		_, _, c.scan = c.scan.boundary(p[:got])
	}
	if err != nil {
		return max(got, 0), err
	}
	return got, nil
}
