package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// notifier speaks systemd's notification protocol (sd_notify(3)): each
// message is one datagram of NAME=value lines on the unix socket named by
// NOTIFY_SOCKET. It is these few lines rather than go-systemd's daemon
// package because the protocol is small and frozen, and because this way
// the environment comes from command.getenv, so that a test can run the
// daemon in process against its own socket.
type notifier struct {
	addr *net.UnixAddr // nil: not started by systemd as Type=notify
	// watchdog is WatchdogSec of the unit, 0 if it has none: the process
	// is killed when WATCHDOG=1 is not sent at least this often.
	watchdog time.Duration
}

// newNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID; a
// problem with them is returned and notifications are off.
func newNotifier(getenv func(string) string) (*notifier, error) {
	n := &notifier{}
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return n, nil
	}
	// A path, or an abstract socket written with @ (which package net
	// turns into the leading NUL itself).
	if !strings.HasPrefix(sock, "/") && !strings.HasPrefix(sock, "@") {
		return n, fmt.Errorf("NOTIFY_SOCKET=%q is not a unix socket; not notifying systemd", sock)
	}
	n.addr = &net.UnixAddr{Name: sock, Net: "unixgram"}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return n, nil
	}
	// WATCHDOG_PID, when set, names the process the watchdog is for: a
	// child that inherited the environment must not feed it.
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n, nil
	}
	us, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || us <= 0 {
		return n, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number; not feeding the watchdog", usec)
	}
	n.watchdog = time.Duration(us) * time.Microsecond
	return n, nil
}

// enabled reports whether systemd listens.
func (n *notifier) enabled() bool { return n.addr != nil }

// send sends state, lines such as "READY=1"; without NOTIFY_SOCKET it
// does nothing. A new socket each time, as sd_notify does: one kept open
// would outlive a restart of systemd's end.
func (n *notifier) send(state ...string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	_, err = c.Write([]byte(strings.Join(state, "\n")))
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	return nil
}
