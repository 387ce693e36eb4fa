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
	exitOK      = 0 // clean shutdown, or -help, -version, -check-config, -backup succeeded
	exitFailure = 1 // runtime failure
	exitUsage   = 2 // bad command line or configuration
	exitUnclean = 3 // shutdown cut short
)

const usage = `Usage: qqgateway [-config FILE] [-check-config | -backup FILE | -version]

qqgateway is the QQ transport: an XMPP component (XEP-0114) beside an XMPP
server that relays its users' messages and presence to and from QQ.

Flags:
  -config FILE    the configuration file (default gateway.toml); every key is
                  documented in the example gateway.toml
  -check-config   check the configuration, and that the database can be
                  written where it says, print "config OK" and exit
  -backup FILE    copy the SQLite database ([store] path) to FILE, a new
                  file, and exit; the gateway may be running meanwhile
                  (PostgreSQL: use pg_dump)
  -version        print the name, version and Go version and exit
  -help           print this text and exit

Environment:
  QQGW_COMPONENT_SECRET   the component secret; overrides [component] secret,
                          so the secret need not be in the file
  PGPASSWORD              with [store] driver = "postgres": the database
                          password, which [store] dsn may not hold (or the
                          password file: ~/.pgpass, PGPASSFILE)

Signals:
  SIGINT, SIGTERM   shut down: every user sees their QQ contacts go offline,
                    QQ sessions log out, the database is closed; within
                    [gateway] shutdown_timeout plus 3s. A second signal exits
                    at once.
  SIGHUP            re-read the configuration file and apply its [log] level;
                    a file with errors changes nothing. Other keys take
                    effect at the next start.

Exit status:
  0  clean shutdown (or -help, -version, -check-config, -backup succeeded)
  1  runtime failure: the database cannot be opened, or the XMPP server
     refused the component (wrong secret, or domain not configured there);
     or -backup failed, FILE exists already
  2  usage or configuration error: unknown flag, unreadable file, unknown
     key, bad value; the message names the file, line and key. Also a
     database written by a newer qqgateway, which is left untouched
  3  shutdown cut short by a second signal or by its time bound; some users
     may not have seen their contacts go offline
`

// shutdownSlack is what closing the XMPP stream and the database may take
// beyond the gateway's own shutdown_timeout.
const shutdownSlack = 3 * time.Second

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
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
	backup := fs.String("backup", "", "")
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
	if *backup != "" && !*check {
		return cmd.backup(cfg, *backup)
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
		"qq_server":   cfg.QQ.Server.String(), // never a password in a URL
		"store":       cfg.storeName(),        // never the password
	}).Info("qqgateway: starting")
	applyMemory(cfg, log)

	d, code := cmd.open(cfg, log)
	if d == nil {
		return code
	}
	d.path = path
	d.start()
	code = d.waitForStop()
	return d.shutdown(code)
}

// daemon is the running gateway: its parts, and how to stop them.
type daemon struct {
	cmd  command
	cfg  *fileConfig
	log  *logrus.Logger
	st   *store.Store
	g    *gateway.Gateway
	comp *xmppcomp.Component
	// metrics is the [metrics] listener, nil when off.
	metrics *metricsServer

	sd         *notifier
	health     *health // nil when systemd does not listen
	stopHealth context.CancelFunc

	path        string         // of the configuration, re-read on SIGHUP
	stopSignals chan os.Signal // the signals but SIGHUP
	stopRouting chan struct{}

	stopGateway, stopComp context.CancelFunc
	gwDone, compDone      chan error // nil once received from
	deadline              <-chan time.Time
	bound                 time.Duration
}

// open opens the database and builds the gateway and its component; on
// failure it returns the exit code.
func (cmd command) open(cfg *fileConfig, log *logrus.Logger) (*daemon, int) {
	ms, err := listenMetrics(string(cfg.Metrics.Listen))
	if err != nil {
		log.WithError(err).Error("qqgateway: cannot serve metrics; exiting")
		return nil, exitFailure
	}
	st, err := cfg.openStore(context.Background())
	if err != nil {
		ms.close()
		log.WithError(err).Error("qqgateway: cannot open the database; exiting")
		if errors.Is(err, store.ErrNewerSchema) {
			return nil, exitUsage // this program is older than its data: a restart cannot help
		}
		return nil, exitFailure
	}
	d := &daemon{cmd: cmd, cfg: cfg, log: log, st: st, metrics: ms}
	gcfg := cfg.gatewayConfig(log)
	gcfg.Metrics = ms.metrics()
	d.g, err = gateway.New(gcfg, st)
	if err == nil {
		d.comp, err = xmppcomp.New(xmppcomp.Config{
			Domain:       string(cfg.Component.JID),
			Server:       string(cfg.Component.Server),
			Secret:       string(cfg.Component.Secret),
			Logger:       log,
			OnConnect:    d.onConnect,
			OnDisconnect: d.onDisconnect,
			// The gateway keeps a user's message in its outbox before
			// the next stanza is read: a crash loses nothing it read.
			Inline: true,
			// In a cluster the server balances the domain over the
			// processes' connections (ejabberd's domain_balancing).
			Balanced: cfg.Cluster.Owner != "",
			Slots:    int(cfg.Cluster.Slots),
		}, d.g)
	}
	if err != nil {
		ms.close()
		st.Close()
		log.WithError(err).Error("qqgateway: configuration refused; exiting")
		return nil, exitUsage
	}
	return d, exitOK
}

// start runs the component and the gateway. The component outlives the
// gateway: the gateway's shutdown still sends unavailable presences
// through it.
func (d *daemon) start() {
	d.metrics.serve(d.healthy, d.log)
	d.startHealth()
	d.stopSignals, d.stopRouting = make(chan os.Signal, 2), make(chan struct{})
	go d.routeSignals()
	var gctx, cctx context.Context
	gctx, d.stopGateway = context.WithCancel(context.Background())
	cctx, d.stopComp = context.WithCancel(context.Background())
	d.compDone, d.gwDone = make(chan error, 1), make(chan error, 1)
	go func() {
		// In a cluster, connect once a slot of the domain is ours.
		if err := d.g.JoinCluster(cctx); err != nil {
			d.compDone <- nil
			return
		}
		d.compDone <- d.comp.Run(cctx)
	}()
	go func() { d.gwDone <- d.g.Run(gctx, d.comp) }()
}

// waitForStop waits for a signal to stop, or for the component or the
// gateway to stop on their own, which is a failure.
func (d *daemon) waitForStop() int {
	select {
	case sig := <-d.stopSignals:
		d.log.WithField("signal", sig.String()).Info("qqgateway: shutting down; a second signal exits at once")
		return exitOK
	case err := <-d.compDone:
		d.compDone = nil
		// A permanent refusal: a wrong secret, or a domain the server does
		// not serve. Nothing to serve; restarting cannot help.
		msg := "qqgateway: the XMPP server refused the component; exiting"
		switch {
		case errors.Is(err, xmppcomp.ErrNotAuthorized):
			msg = "qqgateway: the XMPP server refused the component secret ([component] secret or " + secretEnv + "); exiting"
		case errors.Is(err, xmppcomp.ErrHostUnknown):
			msg = "qqgateway: the XMPP server has no component for [component] jid; exiting"
		}
		d.log.WithError(err).Error(msg)
	case err := <-d.gwDone:
		d.gwDone = nil
		d.log.WithError(err).Error("qqgateway: the gateway stopped unasked; exiting")
	}
	return exitFailure
}

// shutdown stops the gateway, then the component, then closes the
// database, within shutdown_timeout plus shutdownSlack; code is the exit
// code so far.
func (d *daemon) shutdown(code int) int {
	d.bound = time.Duration(d.cfg.Gateway.ShutdownTimeout) + shutdownSlack
	deadline := time.NewTimer(d.bound)
	defer deadline.Stop()
	d.deadline = deadline.C
	defer d.metrics.close() // last: /readyz says 503 meanwhile
	defer d.stopGateway()
	defer d.stopComp()
	defer close(d.stopRouting)

	d.stopping()
	d.stopGateway()
	if cut := d.stopped(d.gwDone, "the gateway's shutdown", "gateway", &code); cut {
		return exitUnclean
	}
	d.stopComp()
	if cut := d.stopped(d.compDone, "closing the XMPP stream", "XMPP component", &code); cut {
		return exitUnclean
	}
	if err := d.st.Close(); err != nil {
		d.log.WithError(err).Error("qqgateway: closing the database")
		code = exitFailure
	}
	d.log.WithField("exit_code", code).Info("qqgateway: stopped")
	return code
}

// stopped waits for done (nil: received already), unless a second signal
// or the shutdown's bound comes first: then it reports the shutdown cut
// short. An error from done makes *code a failure.
func (d *daemon) stopped(done <-chan error, what, name string, code *int) (cut bool) {
	if done == nil {
		return false
	}
	select {
	case err := <-done:
		if err != nil {
			d.log.WithError(err).Error("qqgateway: " + name)
			*code = exitFailure
		}
		return false
	case sig := <-d.stopSignals:
		d.log.WithField("signal", sig.String()).Error("qqgateway: second signal; exiting without finishing the shutdown")
	case <-d.deadline:
		d.log.WithField("bound", d.bound).Error("qqgateway: " + what + " took too long; exiting without finishing the shutdown")
	}
	return true
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
			Transport:    nil, // one the gateway shares among all sessions
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
		MaxUserQueue:    gateway.DefaultMaxUserQueue,
		Cluster: gateway.ClusterConfig{
			Owner:    string(c.Cluster.Owner),
			Slots:    int(c.Cluster.Slots),
			LeaseTTL: time.Duration(c.Cluster.LeaseTTL),
			Beat:     gateway.DefaultBeat,
		},
		Clock:   nil, // the real one
		Logger:  log,
		Metrics: nil, // set by open when [metrics] listen is set
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
