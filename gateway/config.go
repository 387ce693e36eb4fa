package gateway

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
)

// Defaults of Config, as DefaultConfig sets them.
const (
	DefaultName = "QQ"
	// An active conversation polls twice a second, so that a message from
	// QQ waits a quarter of a second on average; an idle user polls every
	// 12 s, which with the Query_Stat of the usual HI (60 s) makes 6 QQ
	// requests a minute.
	DefaultPollActive      = 500 * time.Millisecond
	DefaultPollIdle        = 12 * time.Second
	DefaultActiveFor       = 2 * time.Minute
	DefaultMaxInFlight     = 64
	DefaultLoginBackoffMin = 5 * time.Second
	DefaultLoginBackoffMax = 5 * time.Minute
	DefaultShutdownTimeout = 5 * time.Second
	DefaultResourceGrace   = 15 * time.Second
	// DefaultProfileFetches bounds the GetInfo requests one roster import
	// makes for the nicknames of offline buddies.
	DefaultProfileFetches = 200
	// DefaultMaxMessageBytes is the longest text sent in one CLTMSG. The
	// protocol states no limit; this one keeps each request far below what
	// servers accept even when every byte must be escaped. [project]
	DefaultMaxMessageBytes = 2000
	// DefaultMaxUserQueue bounds the stanzas of one user waiting to be
	// served; more are refused with resource-constraint. A client that
	// pastes 500 lines as 500 messages must still get through. [project]
	DefaultMaxUserQueue = 1000
)

// Config configures a Gateway. Every field is taken as it is: start from
// DefaultConfig and change what differs.
type Config struct {
	// Domain is the component's domain, e.g. "qq.example.org"; buddies are
	// <uin>@Domain.
	Domain string
	// Name is the gateway's name in service discovery.
	Name string
	// Version is what jabber:iq:version and the stats command answer.
	Version string
	// Admins are the bare JIDs that may run the administrators' commands
	// (list and remove users, statistics, announcements). SetAdmins
	// changes them while the gateway runs.
	Admins []string

	// QQ are the options of every QQ client. Server is the QQ HTTP URL. A
	// nil Transport is replaced by one qqproto.NewTransport() shared by
	// all sessions, so their keep-alive connections are reused.
	QQ qqproto.Options
	// NewQQ makes the QQ client of one account; nil means a
	// *qqproto.Client with the QQ options.
	NewQQ func(uin qqproto.UIN) QQ

	// Cluster makes the gateway one of several processes sharing the
	// store behind a balancing XMPP server; zero: alone (cluster.go).
	Cluster ClusterConfig

	// PollActive is the GetMsgEx period of a session with a conversation
	// in the last ActiveFor; PollIdle that of any other session. Neither is
	// ever longer than the server's poll interval (HI).
	PollActive, PollIdle, ActiveFor time.Duration
	// StatusInterval is the period of Query_Stat; 0 means the server's HI.
	StatusInterval time.Duration
	// MaxInFlight bounds the sessions doing work (and so the QQ requests in
	// flight) at any moment.
	MaxInFlight int
	// LoginBackoffMin and LoginBackoffMax bound the wait between login
	// attempts while the QQ server cannot be reached; it doubles per
	// failure.
	LoginBackoffMin, LoginBackoffMax time.Duration
	// ShutdownTimeout bounds what Run does after its context ended:
	// unavailable presences and QQ logouts.
	ShutdownTimeout time.Duration
	// ResourceGrace is how long after a reconnect a user's server has to
	// answer the probe for each resource the session knew; resources it
	// does not confirm went away while the connection was down.
	ResourceGrace time.Duration
	// ProfileFetches bounds the GetInfo requests of one roster import (the
	// nicknames of offline buddies not yet known); 0 means none.
	ProfileFetches int
	// MaxMessageBytes bounds the UTF-8 bytes of text in one CLTMSG; a longer
	// message is split on character boundaries into several.
	MaxMessageBytes int
	// MaxUserQueue bounds one user's stanzas waiting to be served: a
	// stanza beyond it is refused at once with resource-constraint (wait),
	// so that one user's flood neither fills memory nor delays the others.
	MaxUserQueue int

	// Clock tells the time and runs the timers; nil means the real one.
	// Tests pass a fake to step through poll intervals without sleeping.
	Clock clockwork.Clock

	// Logger receives the gateway's log; nil discards it. Session lines
	// carry the fields jid and uin; passwords and their MD5 never appear.
	Logger logrus.FieldLogger

	// Metrics receive what the gateway counts (NewMetrics); nil means
	// metrics of the gateway's own, registered nowhere, which only the
	// admins' stats command reads.
	Metrics *Metrics
}

// DefaultConfig is the configuration of a gateway for domain with every
// other field at its default.
func DefaultConfig(domain string) Config {
	return Config{
		Domain:          domain,
		Name:            DefaultName,
		Version:         "dev",
		PollActive:      DefaultPollActive,
		PollIdle:        DefaultPollIdle,
		ActiveFor:       DefaultActiveFor,
		MaxInFlight:     DefaultMaxInFlight,
		LoginBackoffMin: DefaultLoginBackoffMin,
		LoginBackoffMax: DefaultLoginBackoffMax,
		ShutdownTimeout: DefaultShutdownTimeout,
		ResourceGrace:   DefaultResourceGrace,
		ProfileFetches:  DefaultProfileFetches,
		MaxMessageBytes: DefaultMaxMessageBytes,
		MaxUserQueue:    DefaultMaxUserQueue,
		Cluster:         ClusterConfig{LeaseTTL: DefaultLeaseTTL, Beat: DefaultBeat},
	}
}

func (c *Config) validate() (jid.JID, error) {
	if c.Domain == "" {
		return jid.JID{}, errors.New("gateway: Config.Domain is empty; want the component domain, e.g. \"qq.example.org\"")
	}
	dom, err := jid.Parse(c.Domain)
	if err != nil || dom.Localpart() != "" || dom.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("gateway: Config.Domain %q is not a bare domain like \"qq.example.org\"", c.Domain)
	}
	if err := c.checkNumbers(); err != nil {
		return jid.JID{}, err
	}
	if err := c.Cluster.validate(); err != nil {
		return jid.JID{}, err
	}
	for _, a := range c.Admins {
		if _, err := jid.Parse(a); err != nil || a == "" {
			return jid.JID{}, fmt.Errorf("gateway: Config.Admins: %q is not a JID; want bare JIDs such as \"admin@example.org\"", a)
		}
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	if c.QQ.Transport == nil {
		c.QQ.Transport = qqproto.NewTransport()
	}
	if c.NewQQ == nil {
		opts := c.QQ
		c.NewQQ = func(uin qqproto.UIN) QQ { return newQQClient(uin, opts) }
	}
	if c.Metrics == nil {
		if c.Metrics, err = NewMetrics(prometheus.NewRegistry()); err != nil {
			return jid.JID{}, err
		}
	}
	m, newQQ := c.Metrics, c.NewQQ
	c.NewQQ = func(uin qqproto.UIN) QQ { return boundedQQ{meteredQQ{qq: newQQ(uin), m: m}} }
	return dom, nil
}

// checkNumbers rejects durations and counts that cannot work.
func (c *Config) checkNumbers() error {
	for _, d := range []struct {
		name   string
		v      time.Duration
		zeroOK bool
	}{
		{"PollActive", c.PollActive, false},
		{"PollIdle", c.PollIdle, false},
		{"ActiveFor", c.ActiveFor, false},
		{"LoginBackoffMin", c.LoginBackoffMin, false},
		{"LoginBackoffMax", c.LoginBackoffMax, false},
		{"ShutdownTimeout", c.ShutdownTimeout, false},
		{"ResourceGrace", c.ResourceGrace, false},
		{"StatusInterval", c.StatusInterval, true},
	} {
		if d.v < 0 || (d.v == 0 && !d.zeroOK) {
			return fmt.Errorf("gateway: Config.%s is %v; want a positive duration (DefaultConfig sets every field)", d.name, d.v)
		}
	}
	switch {
	case c.PollActive > c.PollIdle:
		return fmt.Errorf("gateway: Config.PollActive (%v) is longer than Config.PollIdle (%v)", c.PollActive, c.PollIdle)
	case c.LoginBackoffMin > c.LoginBackoffMax:
		return fmt.Errorf("gateway: Config.LoginBackoffMin (%v) is longer than Config.LoginBackoffMax (%v)", c.LoginBackoffMin, c.LoginBackoffMax)
	case c.MaxInFlight <= 0:
		return fmt.Errorf("gateway: Config.MaxInFlight is %d; want at least 1", c.MaxInFlight)
	case c.MaxMessageBytes < minSplitSize:
		return fmt.Errorf("gateway: Config.MaxMessageBytes is %d; want at least %d (default %d)", c.MaxMessageBytes, minSplitSize, DefaultMaxMessageBytes)
	case c.MaxUserQueue <= 0:
		return fmt.Errorf("gateway: Config.MaxUserQueue is %d; want at least 1 (default %d)", c.MaxUserQueue, DefaultMaxUserQueue)
	case c.ProfileFetches < 0:
		return fmt.Errorf("gateway: Config.ProfileFetches is %d; want 0 or more", c.ProfileFetches)
	case c.Name == "" || c.Version == "":
		return errors.New("gateway: Config.Name and Config.Version must not be empty")
	}
	return nil
}
