//go:build !unix

package xmppcomp

import "net"

// framed is a no-op where MSG_PEEK is not available: reads take what has
// arrived, as the operating system hands it over.
func framed(nc net.Conn, max int) net.Conn { return nc }
