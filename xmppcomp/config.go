package xmppcomp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultPingInterval = 30 * time.Second
	DefaultPingTimeout  = 10 * time.Second
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultQueueSize    = 1024
	// DefaultMaxStanzaBytes is Prosody's and ejabberd's own default bound
	// on a stanza (c2s and component streams alike).
	DefaultMaxStanzaBytes = 1 << 20
	// DefaultSendBuffer is the kernel's send buffer of the connection.
	DefaultSendBuffer = 16 << 10
)

// Config describes one component connection. Zero durations take the
// defaults above.
type Config struct {
	// Domain is the component's domain, e.g. "qq.example.org". It must match
	// the Component/ejabberd_service entry on the server.
	Domain string
	// Server is host:port of the server's component listener (Prosody's
	// component_ports, ejabberd's ejabberd_service listener), usually
	// "127.0.0.1:5347".
	Server string
	// Secret is the shared component secret (Prosody component_secret,
	// ejabberd password).
	Secret string

	// MinBackoff and MaxBackoff bound the wait between connection attempts:
	// it doubles per failed attempt up to MaxBackoff, with jitter (each wait
	// is between half and all of the nominal value), and starts again at
	// MinBackoff after a connection that held for at least MaxBackoff.
	MinBackoff, MaxBackoff time.Duration

	// PingInterval is how often a XEP-0199 ping is sent to the server to prove
	// the connection alive; a negative value disables pings. PingTimeout is how
	// long an answer may take before the connection is declared dead, closed
	// and redialled.
	PingInterval, PingTimeout time.Duration

	// DialTimeout bounds TCP connect plus handshake.
	DialTimeout time.Duration
	// WriteTimeout bounds one write when the caller's context has no
	// deadline. A write that times out closes the connection, since the
	// stream may hold half a stanza.
	WriteTimeout time.Duration

	// QueueSize is how many inbound stanzas may wait for the Handler. While
	// it is full, reading pauses (the server buffers), and ping failures are
	// not held against the connection.
	QueueSize int

	// Inline calls the Handler on the reader's goroutine, and QueueSize is
	// unused: a stanza leaves the kernel's socket only after the Handler
	// handled it (on TCP, where the reader can peek), so a crash cannot
	// lose a stanza the component had taken. For a Handler that never
	// blocks and must make some stanzas durable before reading on:
	// XEP-0114 has no acknowledgement, so a stanza read ahead into a
	// queue would be lost without a trace by a crash. A BatchHandler gets
	// the stanzas that arrived together in one call.
	Inline bool

	// MaxStanzaBytes bounds an inbound stanza, counted as its text: a
	// larger one is refused with policy-violation and the stream goes on.
	MaxStanzaBytes int

	// SendBuffer is the kernel's send buffer (SO_SNDBUF) of the connection,
	// in bytes; negative leaves the system's, which grows to megabytes. It
	// is small on purpose: what the kernel holds reaches the server in
	// order, whoever it is for, so a big buffer lets one user's burst of
	// answers delay everybody's; what it does not hold waits with its
	// sender, and the Component's writers take turns.
	SendBuffer int

	// Balanced says that the server spreads the domain's stanzas over
	// several component connections by their sender's bare JID, each
	// connection holding one of Slots slots (ejabberd's domain_balancing
	// with type bare_source and component_number). A balanced connection
	// first checks that it got a slot (else ErrNoSlot, and it is dialled
	// again), pings from a JID of its own slot so that its liveness pings
	// come back to it, and Barrier pings the user's bare JID, whose answer
	// comes from the user and so to the connection of the user's slot.
	Balanced bool
	Slots    int

	// HandlePings passes XEP-0199 pings addressed to the bare component
	// domain to the Handler instead of answering them automatically.
	HandlePings bool

	// Logger receives connection events; nil discards them.
	Logger logrus.FieldLogger

	// OnConnect is called in its own goroutine after each successful
	// handshake; ctx is cancelled when that connection ends.
	OnConnect func(ctx context.Context)
	// OnDisconnect is called from Run's goroutine when an established
	// connection ends, before any reconnect attempt, with the reason
	// (nil when Run's context ended). Keep it short.
	OnDisconnect func(err error)
}

func (cfg *Config) validate() (jid.JID, error) {
	if cfg.Domain == "" {
		return jid.JID{}, errors.New("xmppcomp: Config.Domain is empty; want the component domain, e.g. \"qq.example.org\"")
	}
	dom, err := jid.Parse(cfg.Domain)
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.Domain %q is not a valid domain: %w", cfg.Domain, err)
	}
	if dom.Localpart() != "" || dom.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.Domain %q must be a bare domain, without user@ or /resource", cfg.Domain)
	}
	if cfg.Server == "" {
		return jid.JID{}, errors.New("xmppcomp: Config.Server is empty; want host:port of the server's component port, e.g. \"127.0.0.1:5347\"")
	}
	host, port, err := net.SplitHostPort(cfg.Server)
	if err != nil || host == "" || port == "" {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.Server %q is not host:port", cfg.Server)
	}
	if cfg.Secret == "" {
		return jid.JID{}, errors.New("xmppcomp: Config.Secret is empty; want the component secret configured on the server")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"MinBackoff", &cfg.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &cfg.MaxBackoff, DefaultMaxBackoff},
		{"PingTimeout", &cfg.PingTimeout, DefaultPingTimeout},
		{"DialTimeout", &cfg.DialTimeout, DefaultDialTimeout},
		{"WriteTimeout", &cfg.WriteTimeout, DefaultWriteTimeout},
	} {
		if *d.v < 0 {
			return jid.JID{}, fmt.Errorf("xmppcomp: Config.%s is negative (%v)", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.MinBackoff > cfg.MaxBackoff {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.MinBackoff (%v) is larger than Config.MaxBackoff (%v)", cfg.MinBackoff, cfg.MaxBackoff)
	}
	if cfg.QueueSize < 0 {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.QueueSize is negative (%d)", cfg.QueueSize)
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxStanzaBytes < 0 {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.MaxStanzaBytes is negative (%d)", cfg.MaxStanzaBytes)
	}
	if cfg.MaxStanzaBytes == 0 {
		cfg.MaxStanzaBytes = DefaultMaxStanzaBytes
	}
	if cfg.Balanced && (cfg.Slots < 2 || cfg.Slots > 1000) {
		return jid.JID{}, fmt.Errorf("xmppcomp: Config.Slots %d: a balanced domain has 2 to 1000 slots (the server's component_number)", cfg.Slots)
	}
	if cfg.SendBuffer == 0 {
		cfg.SendBuffer = DefaultSendBuffer
	}
	if cfg.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Logger = l
	}
	return dom, nil
}
