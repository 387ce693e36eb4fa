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

	"github.com/sirupsen/logrus"

	"qqxmpp/gateway"
	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// Exit codes. A supervisor restarting on 1 should not restart on 2: the
// same configuration fails the same way.
const (
	exitOK      = 0 // clean shutdown, or -help, -version, -check-config succeeded
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad command line or configuration
	exitUnclean = 3 // shutdown cut short
)

const usage = `Usage: qqgateway [-config FILE] [-check-config | -version]

qqgateway is the QQ transport: an XMPP component (XEP-0114) beside an XMPP
server that relays its users' messages and presence to and from QQ.

Flags:
  -config FILE    the configuration file (default gateway.toml); every key is
                  documented in the example gateway.toml
  -check-config   check the configuration, and that the database can be
                  written where it says, print "config OK" and exit
  -version        print the name, version and Go version and exit
  -help           print this text and exit

Environment:
  QQGW_COMPONENT_SECRET   the component secret; overrides [component] secret,
                          so the secret need not be in the file

Signals:
  SIGINT, SIGTERM   shut down: every user sees their QQ contacts go offline,
                    QQ sessions log out, the database is closed; within
                    [gateway] shutdown_timeout plus 3s. A second signal exits
                    at once.

Exit status:
  0  clean shutdown (or -help, -version, -check-config succeeded)
  1  runtime failure: the database cannot be opened, or the XMPP server
     refused the component (wrong secret, or domain not configured there)
  2  usage or configuration error: unknown flag, unreadable file, unknown
     key, bad value; the message names the file, line and key
  3  shutdown cut short by a second signal or by its time bound; some users
     may not have seen their contacts go offline
`

// shutdownSlack is what closing the XMPP stream and the database may take
// beyond the gateway's own shutdown_timeout.
const shutdownSlack = 3 * time.Second

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	os.Exit(command{
		args:    os.Args[1:],
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		getenv:  os.Getenv,
		signals: sigs,
	}.run())
}

// command is one run of qqgateway, with its process surroundings passed
// in so that tests can run it in process.
type command struct {
	args           []string
	stdout, stderr io.Writer
	getenv         func(string) string
	signals        <-chan os.Signal
}

// run does what the flags say and returns the exit code.
func (cmd command) run() int {
	fs := flag.NewFlagSet("qqgateway", flag.ContinueOnError)
	fs.SetOutput(cmd.stderr)
	fs.Usage = func() {} // -help prints usage itself, on stdout
	path := fs.String("config", "gateway.toml", "")
	check := fs.Bool("check-config", false, "")
	showVersion := fs.Bool("version", false, "")
	if err := fs.Parse(cmd.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(cmd.stdout, usage)
			return exitOK
		}
		// flag printed what is wrong.
		fmt.Fprintln(cmd.stderr, "Run qqgateway -help for usage.")
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(cmd.stderr, "qqgateway: unexpected argument %q; the configuration file is given with -config\nRun qqgateway -help for usage.\n", fs.Arg(0))
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(cmd.stdout, versionLine())
		return exitOK
	}
	cfg, warnings, err := loadConfig(*path, cmd.getenv)
	if err != nil {
		var errs configErrors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(cmd.stderr, "qqgateway:", e)
			}
		} else {
			fmt.Fprintln(cmd.stderr, "qqgateway:", err)
		}
		return exitUsage
	}
	if *check {
		for _, w := range warnings {
			fmt.Fprintln(cmd.stderr, "qqgateway: warning:", w)
		}
		fmt.Fprintf(cmd.stdout, "%s: config OK\n", *path)
		return exitOK
	}
	return cmd.serve(*path, cfg, warnings)
}

// serve runs the gateway until a signal or a permanent failure.
func (cmd command) serve(path string, cfg *fileConfig, warnings []string) int {
	log := newLogger(cmd.stderr, string(cfg.Log.Level), string(cfg.Log.Format))
	for _, w := range warnings {
		log.Warn("qqgateway: " + w)
	}
	// Never the secret: only where things are.
	log.WithFields(logrus.Fields{
		"version":     versionString(),
		"config":      path,
		"domain":      cfg.Component.JID,
		"xmpp_server": cfg.Component.Server,
		"qq_server":   cfg.QQ.Server,
		"store":       cfg.Store.Path,
	}).Info("qqgateway: starting")

	st, err := store.Open(context.Background(), string(cfg.Store.Path))
	if err != nil {
		log.WithError(err).Error("qqgateway: cannot open the database; exiting")
		return exitFailure
	}
	g, err := gateway.New(cfg.gatewayConfig(log), st)
	if err != nil {
		st.Close()
		log.WithError(err).Error("qqgateway: configuration refused; exiting")
		return exitUsage
	}
	comp, err := xmppcomp.New(xmppcomp.Config{
		Domain:    string(cfg.Component.JID),
		Server:    string(cfg.Component.Server),
		Secret:    string(cfg.Component.Secret),
		Logger:    log,
		OnConnect: g.OnConnect,
	}, g)
	if err != nil {
		st.Close()
		log.WithError(err).Error("qqgateway: configuration refused; exiting")
		return exitUsage
	}

	// The component outlives the gateway: the gateway's shutdown still
	// sends unavailable presences through it.
	gctx, stopGateway := context.WithCancel(context.Background())
	defer stopGateway()
	cctx, stopComp := context.WithCancel(context.Background())
	defer stopComp()
	compDone := make(chan error, 1)
	go func() { compDone <- comp.Run(cctx) }()
	gwDone := make(chan error, 1)
	go func() { gwDone <- g.Run(gctx, comp) }()

	code := exitOK
	select {
	case sig := <-cmd.signals:
		log.WithField("signal", sig.String()).Info("qqgateway: shutting down; a second signal exits at once")
	case err := <-compDone:
		compDone = nil
		code = exitFailure
		// A permanent refusal: a wrong secret, or a domain the server does
		// not serve. Nothing to serve; restarting cannot help.
		msg := "qqgateway: the XMPP server refused the component; exiting"
		switch {
		case errors.Is(err, xmppcomp.ErrNotAuthorized):
			msg = "qqgateway: the XMPP server refused the component secret ([component] secret or " + secretEnv + "); exiting"
		case errors.Is(err, xmppcomp.ErrHostUnknown):
			msg = "qqgateway: the XMPP server has no component for [component] jid; exiting"
		}
		log.WithError(err).Error(msg)
	case err := <-gwDone:
		gwDone = nil
		code = exitFailure
		log.WithError(err).Error("qqgateway: the gateway stopped unasked; exiting")
	}

	bound := time.Duration(cfg.Gateway.ShutdownTimeout) + shutdownSlack
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	// wait waits for done, unless a second signal or the bound comes first.
	wait := func(done <-chan error, what string) (err error, cut bool) {
		select {
		case err := <-done:
			return err, false
		case sig := <-cmd.signals:
			log.WithField("signal", sig.String()).Error("qqgateway: second signal; exiting without finishing the shutdown")
		case <-deadline.C:
			log.WithField("bound", bound).Error("qqgateway: " + what + " took too long; exiting without finishing the shutdown")
		}
		return nil, true
	}

	stopGateway()
	if gwDone != nil {
		err, cut := wait(gwDone, "the gateway's shutdown")
		if cut {
			return exitUnclean
		}
		if err != nil {
			log.WithError(err).Error("qqgateway: gateway")
			code = exitFailure
		}
	}
	stopComp()
	if compDone != nil {
		err, cut := wait(compDone, "closing the XMPP stream")
		if cut {
			return exitUnclean
		}
		if err != nil {
			log.WithError(err).Error("qqgateway: XMPP component")
			code = exitFailure
		}
	}
	if err := st.Close(); err != nil {
		log.WithError(err).Error("qqgateway: closing the database")
		code = exitFailure
	}
	log.WithField("exit_code", code).Info("qqgateway: stopped")
	return code
}

// gatewayConfig is what the gateway runs with. Every field is set here,
// from the file or its defaults (in fileConfig), or to what the file has no
// key for: the gateway takes each as it is.
func (c *fileConfig) gatewayConfig(log logrus.FieldLogger) gateway.Config {
	return gateway.Config{
		Domain:  string(c.Component.JID),
		Name:    string(c.Gateway.Name),
		Version: versionString(),
		Admins:  c.Gateway.Admins, // nil: none
		QQ: qqproto.Options{
			Server:       string(c.QQ.Server),
			ClientCode:   string(c.QQ.ClientCode),
			HTTPClient:   nil, // one the gateway shares among all sessions
			Timeout:      time.Duration(c.QQ.Timeout),
			MaxAttempts:  int(c.QQ.MaxAttempts),
			RetryBackoff: qqproto.DefaultRetryBackoff,
			Version:      qqproto.DefaultVersion,
		},
		NewQQ:           nil, // a *qqproto.Client with the QQ options
		PollActive:      time.Duration(c.QQ.PollActive),
		PollIdle:        time.Duration(c.QQ.PollIdle),
		ActiveFor:       time.Duration(c.QQ.ActiveFor),
		StatusInterval:  0, // the poll interval (HI) the QQ server hands out
		MaxInFlight:     int(c.QQ.MaxInFlight),
		LoginBackoffMin: time.Duration(c.QQ.LoginBackoffMin),
		LoginBackoffMax: time.Duration(c.QQ.LoginBackoffMax),
		ShutdownTimeout: time.Duration(c.Gateway.ShutdownTimeout),
		ResourceGrace:   gateway.DefaultResourceGrace,
		ProfileFetches:  int(c.QQ.ProfileFetches), // 0: none, for both
		MaxMessageBytes: int(c.QQ.MaxMessageBytes),
		Clock:           nil, // the real one
		Logger:          log,
	}
}

// newLogger builds the logger the file asks for; level and format were
// checked by loadConfig.
func newLogger(w io.Writer, level, format string) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(w)
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		lvl = logrus.InfoLevel
	}
	l.SetLevel(lvl)
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return l
}
