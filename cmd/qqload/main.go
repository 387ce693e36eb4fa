package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"qqxmpp/gateway"
)

func main() {
	var o options
	flag.IntVar(&o.Users, "users", 10000, "registered users, each available and logged in to QQ")
	flag.IntVar(&o.Buddies, "buddies", 10, "QQ buddies per user (other load accounts)")
	flag.DurationVar(&o.Duration, "duration", 60*time.Second, "measuring window")
	flag.DurationVar(&o.PollIdle, "poll-idle", gateway.DefaultPollIdle, "gateway Config.PollIdle")
	flag.DurationVar(&o.PollActive, "poll-active", gateway.DefaultPollActive, "gateway Config.PollActive")
	flag.IntVar(&o.MaxInFlight, "max-in-flight", gateway.DefaultMaxInFlight, "gateway Config.MaxInFlight")
	flag.Float64Var(&o.ChatRate, "chat-rate", 0, "messages per second from QQ to random users during the window; 0 is idle")
	flag.DurationVar(&o.LoginTimeout, "login-timeout", 10*time.Minute, "how long all users may take to log in")
	flag.DurationVar(&o.Settle, "settle", 10*time.Second, "pause between all logged in and the window, for roster imports to finish")
	flag.DurationVar(&o.Grace, "grace", 0, "how long after the window sent messages may take to arrive; 0 is 2×poll-idle+5s")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "qqload: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "qqload:", err)
		os.Exit(1)
	}
	rep.write(os.Stdout)
	if problems := rep.problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "qqload: FAIL:", p)
		}
		os.Exit(1)
	}
}
