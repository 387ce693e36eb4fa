//go:build e2e

package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A process killed with SIGKILL leaves unread what the kernel still held
// in its sockets: with XEP-0114 (no acknowledgements) a stanza there is
// lost without an error, whatever the program does. killReading proves
// which stanzas met that fate: it stops the process (SIGSTOP: it reads
// nothing more), takes a copy of each of its TCP sockets on port (the
// socket then outlives the process for a moment), kills the group, and
// reads what is left unread, and what comes for holdOpen more, before
// closing the copies. Bytes the process
// had already read into its own buffers are not among them: a stanza cut
// there is not excused.
func killReading(pid, port int, kill func()) (killed, error) {
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		kill()
		return killed{}, fmt.Errorf("SIGSTOP %d: %w", pid, err)
	}
	k := killed{stopped: time.Now()}
	fds, err := copySockets(pid, port)
	kill()
	// The peer may still be writing what it took before it could see the
	// process gone (Prosody routing a client's message to the component):
	// read for a while, so that the proof covers that too.
	for end := time.Now().Add(holdOpen); ; time.Sleep(10 * time.Millisecond) {
		for _, fd := range fds {
			k.unread = append(k.unread, drain(fd)...)
		}
		if time.Now().After(end) {
			break
		}
	}
	for _, fd := range fds {
		unix.Close(fd)
	}
	k.closed = time.Now()
	return k, err
}

// holdOpen is how long killReading keeps reading a killed process's
// sockets before closing them. Meanwhile its peers see the connection up
// and go on writing to it, as they would for a moment to a process just
// gone.
const holdOpen = 300 * time.Millisecond

// killed is what killReading saw: the bytes left unread, when the
// process had been stopped (it read nothing sent after that), and when its
// sockets were gone.
type killed struct {
	unread          []byte
	stopped, closed time.Time
}

// copySockets duplicates into this process pid's TCP sockets whose local
// or remote port is port (pidfd_getfd, Linux 5.6; root).
func copySockets(pid, port int) ([]int, error) {
	inodes, err := tcpInodes(pid, port)
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fds []int
	var errs []error
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !inodes[link] {
			continue
		}
		target, _ := strconv.Atoi(e.Name())
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("pidfd_getfd %d/%d: %w", pid, target, err))
			continue
		}
		fds = append(fds, fd)
	}
	if len(fds) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("no TCP socket of %d on port %d", pid, port))
	}
	return fds, errors.Join(errs...)
}

// tcpInodes returns the "socket:[inode]" names of pid's IPv4 and IPv6 TCP
// connections with port at either end.
func tcpInodes(pid, port int) (map[string]bool, error) {
	hexPort := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[0] == "sl" {
				continue
			}
			if strings.HasSuffix(fields[1], hexPort) || strings.HasSuffix(fields[2], hexPort) {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		f.Close()
	}
	return inodes, nil
}

// drain reads what fd holds without waiting.
func drain(fd int) []byte {
	var out []byte
	buf := make([]byte, 256<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if n <= 0 || err != nil {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// bodyID finds the ids of the suite's messages in raw XML.
var bodyID = regexp.MustCompile(`<body>([xq][0-9]{5})</body>`)

func idsIn(raw []byte) []string {
	var ids []string
	for _, m := range bodyID.FindAllSubmatch(raw, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

// TestKillReadingFindsUnreadStanzas proves the proof: a process that
// never reads its socket is killed with two messages waiting there, and
// killReading returns both ids.
func TestKillReadingFindsUnreadStanzas(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command("/usr/bin/python3", "-c",
		fmt.Sprintf("import socket, time\ns = socket.create_connection(('127.0.0.1', %d))\ntime.sleep(60)", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "<message id='a'><body>x00001</body></message><message><body>q00002</body></message>"); err != nil {
		t.Fatal(err)
	}
	// On loopback the bytes are in the child's receive queue when Write
	// returns.
	k, err := killReading(cmd.Process.Pid, port, func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsIn(k.unread); !slices.Equal(got, []string{"x00001", "q00002"}) {
		t.Errorf("killReading found %q (raw %q), want x00001 and q00002", got, k.unread)
	}
}
