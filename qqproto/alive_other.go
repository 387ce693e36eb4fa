//go:build !unix

package qqproto

import "net"

// closedByServer cannot peek here; a connection the server closed fails
// its exchange, which is then retried with the same SEQ.
func closedByServer(net.Conn) bool { return false }
