package main

// The [metrics] listener: Prometheus metrics on /metrics, and the probes
// /healthz (the process runs) and /readyz (it can serve).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"qqxmpp/gateway"
)

// readyTimeout bounds one /readyz check: a database that takes longer to
// take a write is not ready.
const readyTimeout = 5 * time.Second

// metricsServer is the [metrics] listener. A nil one (metrics off) does
// nothing.
type metricsServer struct {
	reg *prometheus.Registry
	m   *gateway.Metrics
	ln  net.Listener
	srv *http.Server
}

// listenMetrics registers the gateway's metrics, the Go runtime's and the
// process's on a registry of their own and listens on addr; for "" it
// returns nil. It listens at once, so that a taken port stops the start.
func listenMetrics(addr string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m, err := gateway.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("[metrics] listen: %w", err)
	}
	return &metricsServer{reg: reg, m: m, ln: ln}, nil
}

// metrics is what the gateway counts into: nil when off.
func (ms *metricsServer) metrics() *gateway.Metrics {
	if ms == nil {
		return nil
	}
	return ms.m
}

// serve answers on the listener until close; ready says why the gateway
// cannot serve, or nil.
func (ms *metricsServer) serve(ready func(context.Context) error, log logrus.FieldLogger) {
	if ms == nil {
		return
	}
	ms.srv = &http.Server{Handler: probeHandler(ms.reg, ready, log), ReadHeaderTimeout: readyTimeout}
	srv, ln := ms.srv, ms.ln
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("qqgateway: the metrics listener failed")
		}
	}()
	log.WithField("address", ln.Addr().String()).Info("qqgateway: serving /metrics, /healthz and /readyz")
}

// close stops the listener, letting a scrape under way finish for a
// moment.
func (ms *metricsServer) close() {
	if ms == nil {
		return
	}
	if ms.srv == nil {
		ms.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ms.srv.Shutdown(ctx) != nil {
		ms.srv.Close()
	}
}

// probeHandler serves /metrics from g, /healthz always, and /readyz while
// ready finds nothing wrong; else 503 with the reason on one line.
func probeHandler(g prometheus.Gatherer, ready func(context.Context) error, log logrus.FieldLogger) http.Handler {
	mux := http.NewServeMux()
	// ContinueOnError: a store that cannot be asked costs its own series,
	// not the whole scrape (the error is logged).
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: log, ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "alive\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+oneLine(err.Error()), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}
