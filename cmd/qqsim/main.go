package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto/qqsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qqsim:", err)
		os.Exit(1)
	}
}

// run is the program: it returns when ctx ends (nil after a clean
// shutdown) or on an error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qqsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8000", "address to listen on; port 0 picks a free one")
	world := fs.String("world", "", "world file of [[account]] tables; empty: the built-in demo world")
	hi := fs.Duration("hi", 60*time.Second, "poll interval handed out at Login (HI)")
	li := fs.Duration("li", 300*time.Second, "silence after which a session ends (LI)")
	level := fs.String("log-level", "info", "log level: debug (every request), info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	log := logrus.New()
	log.SetOutput(stderr)
	lv, err := logrus.ParseLevel(*level)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log.SetLevel(lv)
	if *hi < time.Second || *li < time.Second {
		return fmt.Errorf("-hi and -li must be at least 1s (got %v and %v)", *hi, *li)
	}

	accts := qqsim.DemoWorld()
	source := "the built-in demo world"
	if *world != "" {
		if accts, err = qqsim.LoadWorld(*world); err != nil {
			return err
		}
		source = *world
	}
	sim := qqsim.New(qqsim.Options{PollInterval: *hi, IdleTimeout: *li, Logger: log})
	for _, a := range accts {
		if err := sim.AddAccount(a); err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "accounts": len(accts), "world": source}).Info("qqsim: serving")
	fmt.Fprintf(stdout, "qqsim listening on http://%s/\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("qqsim: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
