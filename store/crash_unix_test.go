//go:build unix

package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashChild runs in a re-executed test binary: it enqueues (and removes)
// as fast as it can and prints "A id" once Enqueue acknowledged an item,
// "r id" before it removes one and "R id" once Remove acknowledged that,
// until it is killed. db is "sqlite:" and a file, or "postgres:" and a
// DSN (crashTarget).
func crashChild(db string) int {
	ctx := context.Background()
	open := Open
	if dsn, ok := strings.CutPrefix(db, "postgres:"); ok {
		open, db = OpenPostgres, dsn
	} else {
		db = strings.TrimPrefix(db, "sqlite:")
	}
	s, err := open(ctx, db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var live []int64
	for i := 0; ; i++ {
		var ids []int64
		if i%4 == 0 {
			batch := []Item{
				{Dir: ToXMPP, JID: alice, Peer: 20002, Text: fmt.Sprintf("batch %d a", i)},
				{Dir: ToQQ, JID: alice, Peer: 20002, Text: fmt.Sprintf("batch %d b", i)},
				{Dir: ToXMPP, JID: alice, Peer: 30003, Text: fmt.Sprintf("batch %d c", i)},
			}
			ids, err = s.EnqueueBatch(ctx, batch)
		} else {
			var id int64
			id, err = s.Enqueue(ctx, Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: fmt.Sprintf("single %d", i)})
			ids = []int64{id}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Each line is one write(2) to a pipe, smaller than PIPE_BUF, so it
		// arrives whole or not at all.
		for _, id := range ids {
			fmt.Fprintf(os.Stdout, "A %d\n", id)
		}
		live = append(live, ids...)
		if i%3 == 0 && len(live) > 0 {
			id := live[0]
			live = live[1:]
			// Announced first: if the kill lands after the delete committed
			// but before "R", the item may be gone without an acknowledgement.
			fmt.Fprintf(os.Stdout, "r %d\n", id)
			if err := s.Remove(ctx, id); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Fprintf(os.Stdout, "R %d\n", id)
		}
	}
}

// Every item Enqueue acknowledged is still there after the process was
// killed with SIGKILL in the middle of its work, and every acknowledged
// Remove stays removed; an SQLite file opens and passes an integrity check.
// On PostgreSQL the server outlives the client it loses.
func TestAcknowledgedSurviveSIGKILL(t *testing.T) { eachDriver(t, testAcknowledgedSurviveSIGKILL) }

func testAcknowledgedSurviveSIGKILL(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	s.Close()

	acked := map[int64]ack{}
	for round, killAfter := range []int{50, 200, 500} {
		acks, added := runAndKill(t, d.name+":"+path, killAfter)
		if added < killAfter {
			t.Fatalf("round %d: child acknowledged only %d items", round, added)
		}
		for id, a := range acks {
			acked[id] = a
		}

		s, err := d.Open(ctx, path)
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		var check string
		if d.name == "sqlite" {
			if err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
				t.Errorf("round %d: integrity_check = %q, %v", round, check, err)
			}
		}
		have := map[int64]bool{}
		for _, dir := range []Direction{ToXMPP, ToQQ} {
			items, err := s.Pending(ctx, alice, dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				have[it.ID] = true
			}
		}
		s.Close()
		lost, resurrected := 0, 0
		for id, a := range acked {
			if a == enqueued && !have[id] {
				lost++
			}
			if a == removed && have[id] {
				resurrected++
			}
		}
		if lost > 0 || resurrected > 0 {
			t.Fatalf("round %d: %d acknowledged items lost, %d acknowledged removals undone (of %d acknowledged)", round, lost, resurrected, len(acked))
		}
		t.Logf("round %d: killed after %d acknowledged enqueues; all %d acknowledged IDs so far accounted for", round, added, len(acked))
	}
}

// ack is what the child acknowledged about an ID.
type ack int

const (
	enqueued ack = iota // must be present
	removing            // removal started, not acknowledged: either is fine
	removed             // must be absent
)

// runAndKill starts the child on db (see crashChild) and SIGKILLs it once it acknowledged
// killAfter enqueues. It returns what the child acknowledged for every ID it
// printed and the number of acknowledged enqueues.
func runAndKill(t *testing.T, db string, killAfter int) (acks map[int64]ack, added int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer watchdog.Stop()

	acks = map[int64]ack{}
	var bad []string
	sc := bufio.NewScanner(out)
	for sc.Scan() { // lines written before the kill are still read
		op, num, _ := strings.Cut(sc.Text(), " ")
		id, err := strconv.ParseInt(num, 10, 64)
		switch {
		case err != nil:
			bad = append(bad, sc.Text())
		case op == "A":
			acks[id] = enqueued
			added++
			if added == killAfter {
				cmd.Process.Kill() // SIGKILL on unix
			}
		case op == "r":
			acks[id] = removing
		case op == "R":
			acks[id] = removed
		default:
			bad = append(bad, sc.Text())
		}
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v; stderr:\n%s", err, stderr.String())
	}
	if len(bad) > 0 {
		t.Fatalf("child printed unexpected lines %q", bad)
	}
	return acks, added
}
