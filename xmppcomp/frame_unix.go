//go:build unix

package xmppcomp

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// framedConn is a TCP connection that hands its reader one stanza per read
// and takes from the kernel only what was handled: it peeks at what the
// kernel holds (MSG_PEEK), hands the stanzas found there one by one
// (frameScanner finds where each ends), and removes them from the socket
// only when the reader asks for more than the peek holds, which the
// component does only after its Handler has handled them all. So a burst
// costs two system calls, not two per stanza, and what was not handled is
// still in the socket when the process dies.
type framedConn struct {
	net.Conn
	raw  syscall.RawConn
	scan frameScanner // the state at handed
	peek []byte
	n    int // bytes peeked, from the socket's first unread byte
	// handed is how many of them the reader has been given; they leave
	// the socket at the next refill.
	handed int
	// end is where the next complete stanza after handed ends (the state
	// there in endScan), or -1 if peek[handed:n] holds none, or 0 if not
	// scanned yet.
	end     int
	endScan frameScanner
}

// framed wraps nc, a TCP connection, so that each read ends at a stanza's
// end and nothing leaves the socket before the reader has handled it;
// other connections are returned as they are.
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
	if c.handed == c.n {
		if err := c.refill(); err != nil {
			return 0, err
		}
	}
	k := len(p)
	if e := c.next(); e > 0 && e-c.handed <= k {
		k = e - c.handed
		copy(p, c.peek[c.handed:e])
		c.handed, c.scan, c.end = e, c.endScan, 0
		return k, nil
	}
	// No complete stanza within p: a part of one, as far as it goes.
	k = min(k, c.n-c.handed)
	copy(p, c.peek[c.handed:c.handed+k])
	_, _, c.scan = c.scan.boundary(c.peek[c.handed : c.handed+k])
	c.handed += k
	c.end = 0
	return k, nil
}

// next is where the next complete stanza after handed ends in the peek, or
// -1 if it holds none.
func (c *framedConn) next() int {
	if c.end == 0 {
		k, found, st := c.scan.boundary(c.peek[c.handed:c.n])
		c.end, c.endScan = -1, st
		if found {
			c.end = c.handed + k
		}
	}
	return c.end
}

// buffered reports whether a whole stanza has arrived that the reader was
// not given yet: reading it cannot wait for the network.
func (c *framedConn) buffered() bool { return c.handed < c.n && c.next() > 0 }

// refill takes what was handed out of the socket and peeks again, waiting
// for something to arrive.
func (c *framedConn) refill() error {
	for c.handed > 0 {
		var got int
		var rerr error
		err := c.raw.Read(func(fd uintptr) bool {
			got, rerr = unix.Read(int(fd), c.peek[:c.handed])
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		if got <= 0 {
			return io.EOF
		}
		c.handed -= got
	}
	c.n, c.end = 0, 0
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), c.peek, unix.MSG_PEEK)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	switch {
	case err != nil: // the deadline, or the connection closed
		return err
	case rerr != nil:
		return rerr
	case n == 0:
		return io.EOF
	}
	c.n = n
	return nil
}
