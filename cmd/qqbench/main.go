package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qqbench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, bool, error) {
	var o options
	fs := flag.NewFlagSet("qqbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.users, "users", 1000, "XMPP users registered with the gateway, online throughout (even)")
	fs.IntVar(&o.buddies, "buddies", 0, "QQ buddies per user, all of them other users: even, or users-1 (default: 20, at most users-1)")
	fs.IntVar(&o.pairs, "pairs", 0, "chat pairs (users whose QQ accounts are buddies); also the yardstick's pairs of plain users (default: 20, at most users/2)")
	fs.IntVar(&o.messages, "messages", 200, "messages each user of a chat pair sends the other")
	fs.IntVar(&o.yardMessages, "yard-messages", 1000, "messages each plain user sends in the yardstick (long enough for /proc's 10 ms CPU ticks)")
	fs.DurationVar(&o.idle, "idle", 60*time.Second, "idle window")
	fs.DurationVar(&o.latency, "latency", 30*time.Second, "length of the conversation phase")
	fs.DurationVar(&o.latencyGap, "latency-gap", 500*time.Millisecond, "time between messages of a conversation")
	fs.IntVar(&o.burst, "burst", 1000, "messages queued on QQ for one user in the backlog phase")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait after every user is logged in, before measuring")
	fs.DurationVar(&o.stall, "stall", 60*time.Second, "give up on a phase when nothing progressed for this long")
	fs.DurationVar(&o.stepTimeout, "step-timeout", 60*time.Second, "bound on one user's login and registration")
	fs.IntVar(&o.loginWorkers, "login-workers", 32, "users logging in and registering at once")
	fs.BoolVar(&o.pprof, "pprof", false, "profile qqgateway's CPU during the relay phase (builds it with a profiling hook)")
	fs.BoolVar(&o.restart, "restart", true, "restart the gateway at the end and time until every user is logged in again")
	fs.BoolVar(&o.rosterFiles, "roster-files", false, "write every user's roster (transport and buddies, subscription both) into Prosody's data before it starts, "+
		"instead of each user accepting 2·buddies subscription requests (what makes 10,000 users come online in minutes, not an hour)")
	fs.StringVar(&o.prosodyGC, "prosody-gc", "", "Prosody's garbage collector: \"\" (Prosody's default, incremental with threshold 105), \"generational\" or \"incremental\" (threshold 200): written into its configuration as gc = { mode = ... }")
	fs.IntVar(&o.gcPercent, "gc-percent", 0, "the gateway's [gateway] gc_percent (0: Go's default, 100)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary scratch directory (logs, world, profile); one named by -dir is always kept")
	fs.StringVar(&o.dir, "dir", "", "scratch directory (default: a new temporary one)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if o.buddies == 0 {
		o.buddies = min(20, o.users-1)
	}
	if o.pairs == 0 {
		o.pairs = min(20, o.users/2)
	}
	switch o.prosodyGC {
	case "", "generational", "incremental":
	default:
		return o, false, fmt.Errorf("-prosody-gc is %q; want \"\", \"generational\" or \"incremental\"", o.prosodyGC)
	}
	if o.gcPercent < 0 || o.gcPercent > 1000 {
		return o, false, fmt.Errorf("-gc-percent is %d; want 0 to 1000", o.gcPercent)
	}
	if o.pairs < 1 || 2*o.pairs > o.users || o.messages < 1 || o.yardMessages < 1 || o.burst < 1 {
		return o, false, fmt.Errorf("-pairs must be 1 to users/2; -messages, -yard-messages and -burst at least 1")
	}
	return o, *asJSON, nil
}

// run is the program: it exits non-zero when a message was lost,
// doubled or refused or a user could not come online, never on a timing.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, asJSON, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	w, err := newWorld(o.users, o.buddies)
	if err != nil {
		return err
	}
	if o.dir != "" {
		// A directory the user named is never removed.
		if err := os.MkdirAll(o.dir, 0o700); err != nil {
			return err
		}
	} else {
		if o.dir, err = os.MkdirTemp("", "qqbench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.dir)
		}
	}
	b := &bench{o: o, w: w, col: newCollector(), log: stderr,
		rep: report{Users: o.users, Buddies: o.buddies, Pairs: o.pairs, Messages: o.messages}}
	runErr := b.run(ctx)
	if runErr == nil || b.rep.Chat.Sent > 0 {
		if asJSON {
			_ = b.rep.writeJSON(stdout)
		} else {
			b.rep.writeTable(stdout)
		}
	}
	if runErr != nil {
		return fmt.Errorf("%w (scratch directory %s)", runErr, o.dir)
	}
	if !b.rep.ok() {
		t := b.rep.Total
		return fmt.Errorf("FAILED: %d lost, %d doubled, %d unknown, %d message errors (first: %s), %d users failed",
			t.Lost, t.Doubled, t.Unknown, t.Errors, t.FirstError, t.UsersFailed)
	}
	return nil
}
