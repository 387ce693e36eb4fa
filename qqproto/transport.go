package qqproto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpproxy"
)

// Limits of a Transport's connection pool, per QQ server.
const (
	// maxConns bounds the connections to one server. The gateway has far
	// fewer requests in flight (its workers, its logins); a request finding
	// every one busy waits for one within its attempt's time.
	maxConns = 4096
	// idleConnTimeout closes a connection left unused this long.
	idleConnTimeout = 90 * time.Second
	// dialTimeout bounds connecting to the server (or to a proxy).
	dialTimeout = 10 * time.Second
	// peekAfterIdle is how long a pooled connection must have been idle
	// before it is checked for a close by the server: no server closes one
	// sooner, and under load connections come back within milliseconds, so
	// most requests are spared the extra system call.
	peekAfterIdle = 250 * time.Millisecond
)

// Transport carries the requests of many Clients to QQ servers over
// kept-alive HTTP/1.1 connections, and is safe for concurrent use. Share
// one among all Clients: thousands of polling sessions then use a pool of
// connections instead of opening one each.
//
// It is built on fasthttp's connection pool, request writer and response
// reader, which cost less than half of net/http's CPU and a quarter of its
// allocations per request (a GetMsgEx per idle user every few seconds, a
// CLTMSG per message), and adds what the protocol needs: the caller's
// context ends an attempt in flight. A proxy named by HTTP_PROXY,
// HTTPS_PROXY and NO_PROXY is used, through a CONNECT tunnel (or SOCKS5
// for a socks5:// proxy); none for a server on loopback.
type Transport struct {
	dial fasthttp.DialFunc

	mu      sync.Mutex
	servers map[string]*server
}

// server is one QQ server URL: its pool and what every request to it
// carries.
type server struct {
	hc         *fasthttp.HostClient
	requestURI string
	host       string
	err        error // the URL cannot be used: every request fails with it
}

// NewTransport returns a Transport with an empty pool.
func NewTransport() *Transport {
	d := &fasthttpproxy.Dialer{
		DialDualStack: true, // as net/http: a server may be IPv6-only
		Timeout:       dialTimeout,
	}
	dial, err := d.GetDialFunc(true)
	if err != nil {
		// A proxy setting that cannot be read (an unknown scheme): every
		// request fails and says why, rather than bypassing the proxy.
		dial = func(string) (net.Conn, error) { return nil, fmt.Errorf("proxy from the environment: %w", err) }
	}
	return &Transport{dial: dial, servers: make(map[string]*server)}
}

// server returns the pool for the URL s, made on first use; a Client
// looks it up once.
func (t *Transport) server(s string) *server {
	t.mu.Lock()
	defer t.mu.Unlock()
	if srv, ok := t.servers[s]; ok {
		return srv
	}
	srv := t.newServer(s)
	t.servers[s] = srv
	return srv
}

func (t *Transport) newServer(s string) *server {
	u, err := url.Parse(s)
	if err != nil {
		return &server{err: err}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return &server{err: fmt.Errorf("scheme %q: want http or https", u.Scheme)}
	}
	if u.Host == "" {
		return &server{err: fmt.Errorf("%q names no host", s)}
	}
	tls := u.Scheme == "https"
	return &server{
		hc: &fasthttp.HostClient{
			Addr:                   fasthttp.AddMissingPort(u.Host, tls),
			IsTLS:                  tls,
			Dial:                   t.dial,
			MaxConns:               maxConns,
			MaxConnWaitTimeout:     DefaultTimeout, // bounded further by the attempt's own time
			MaxIdleConnDuration:    idleConnTimeout,
			DisablePathNormalizing: true,
		},
		requestURI: u.RequestURI(),
		host:       u.Host,
	}
}

// CloseIdleConnections closes the connections no request is using.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, srv := range t.servers {
		if srv.hc != nil {
			srv.hc.CloseIdleConnections()
		}
	}
}

// errBadURL marks a server URL no request can be sent to.
var errBadURL = errors.New("bad server URL")

// reply is what one HTTP exchange brought back.
type reply struct {
	status int
	body   string
}

// post sends body to the server once, by deadline, and returns the
// reply, whose body may hold at most limit bytes (ErrReplyTooLarge). When
// ctx ends first the error Is ctx.Err().
func (srv *server) post(ctx context.Context, body string, deadline time.Time, limit int) (reply, error) {
	if srv.err != nil {
		return reply{}, fmt.Errorf("%w: %w", errBadURL, srv.err)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(srv.requestURI)
	req.Header.SetHost(srv.host)
	req.Header.SetContentType("text/plain; charset=UTF-8")
	req.SetBodyString(body)

	return srv.exchange(ctx, req, resp, deadline, limit)
}

// exchange writes req on a connection of the pool and reads resp from it.
func (srv *server) exchange(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, limit int) (reply, error) {
	for {
		if ctx.Err() != nil {
			// Before a connection is taken, so that a healthy one is not
			// thrown away for a caller that is gone.
			return reply{}, context.Cause(ctx)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return reply{}, errTimedOut
		}
		start := time.Now()
		cc, err := srv.hc.AcquireConn(wait, false)
		switch {
		case errors.Is(err, fasthttp.ErrTimeout):
			return reply{}, errTimedOut
		case errors.Is(err, fasthttp.ErrNoFreeConns):
			return reply{}, fmt.Errorf("%w: all %d connections to the server busy", errTimedOut, maxConns)
		case err != nil:
			return reply{}, fmt.Errorf("connecting: %w", err)
		}
		conn := cc.Conn()
		// The deadline first: a pooled connection still has its last
		// exchange's, which may have passed while it was idle.
		if err := conn.SetDeadline(deadline); err != nil {
			srv.hc.CloseConn(cc)
			return reply{}, fmt.Errorf("connecting: %w", err)
		}
		if cc.CreatedTime().Before(start) && start.Sub(cc.LastUseTime()) > peekAfterIdle && closedByServer(conn) {
			// Closed by the server while it was idle in the pool: thrown
			// away before anything is written on it.
			srv.hc.CloseConn(cc)
			continue
		}
		// The caller's context ends an exchange in flight by moving the
		// connection's deadline to the past: no goroutine per request.
		stop := func() bool { return true }
		if ctx.Done() != nil {
			stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		}
		err = srv.roundTrip(conn, req, resp, limit)
		// The context ended during the exchange: the deadline is spoilt.
		cancelled := !stop()
		if err != nil || cancelled || resp.ConnectionClose() {
			srv.hc.CloseConn(cc)
		} else {
			srv.hc.ReleaseConn(cc)
		}
		switch {
		case err != nil && cancelled:
			return reply{}, fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		case err != nil:
			return reply{}, err
		}
		return reply{status: resp.StatusCode(), body: string(resp.Body())}, nil
	}
}

// roundTrip writes req on conn and reads resp from it.
func (srv *server) roundTrip(conn net.Conn, req *fasthttp.Request, resp *fasthttp.Response, limit int) error {
	bw := srv.hc.AcquireWriter(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	srv.hc.ReleaseWriter(bw)
	if err != nil {
		return fmt.Errorf("sending request: %w", err)
	}
	br := srv.hc.AcquireReader(conn)
	err = resp.ReadLimitBody(br, limit)
	srv.hc.ReleaseReader(br)
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fmt.Errorf("%w: longer than %d bytes", ErrReplyTooLarge, limit)
	case err != nil:
		return fmt.Errorf("reading reply: %w", err)
	}
	return nil
}

// errTimedOut is an attempt that got no reply by its deadline.
var errTimedOut = errors.New("timed out")

// isTimeout reports whether err is an attempt's deadline passing.
func isTimeout(err error) bool {
	if errors.Is(err, errTimedOut) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
