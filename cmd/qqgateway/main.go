// Command qqgateway runs the QQ transport: an XEP-0114 component beside an
// XMPP server, relaying between its users and the QQ HTTP protocol.
//
//	qqgateway -config gateway.toml
//
// The keys of the file are documented in the commented gateway.toml at the
// root of the repository. On SIGINT or SIGTERM it tells every user their
// QQ contacts went offline, logs out of QQ, and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"qqxmpp/gateway"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

func main() {
	path := flag.String("config", "gateway.toml", "configuration file")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "qqgateway:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	cfg, err := loadConfig(path, os.Getenv)
	if err != nil {
		return err
	}
	log := cfg.logger()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		return fmt.Errorf("%s: [store] path: %w", path, err)
	}
	defer st.Close()

	g, err := gateway.New(cfg.gatewayConfig(log), st)
	if err != nil {
		return err
	}
	comp, err := xmppcomp.New(xmppcomp.Config{
		Domain:    cfg.Component.JID,
		Server:    cfg.Component.Server,
		Secret:    cfg.Component.Secret,
		Logger:    log,
		OnConnect: g.OnConnect,
	}, g)
	if err != nil {
		return err
	}

	// The component outlives the gateway: the gateway's shutdown still
	// sends unavailable presences through it.
	gctx, stopGateway := context.WithCancel(ctx)
	defer stopGateway()
	cctx, stopComp := context.WithCancel(context.Background())
	defer stopComp()
	compDone := make(chan error, 1)
	go func() { compDone <- comp.Run(cctx) }()
	gwDone := make(chan error, 1)
	go func() { gwDone <- g.Run(gctx, comp) }()

	log.WithField("domain", cfg.Component.JID).Info("qqgateway: started")
	var compErr error
	compEnded := false
	select {
	case <-ctx.Done():
	case compErr = <-compDone:
		// A permanent refusal (wrong secret, unknown domain): nothing to serve.
		compEnded = true
	}
	stopGateway()
	gwErr := <-gwDone
	stopComp()
	if !compEnded {
		compErr = <-compDone
	}
	log.Info("qqgateway: stopped")
	return errors.Join(compErr, gwErr)
}
