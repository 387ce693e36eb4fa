package gateway

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
)

// Defaults of Config.
const (
	DefaultName            = "QQ"
	DefaultPollActive      = time.Second
	DefaultPollIdle        = 10 * time.Second
	DefaultActiveFor       = 2 * time.Minute
	DefaultMaxInFlight     = 64
	DefaultLoginBackoffMin = 5 * time.Second
	DefaultLoginBackoffMax = 5 * time.Minute
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultProfileFetches bounds the GetInfo requests one roster import
	// makes for the nicknames of offline buddies.
	DefaultProfileFetches = 200
	// DefaultMaxMessageBytes is the longest text sent in one CLTMSG. The
	// protocol states no limit; this one keeps each request far below what
	// servers accept even when every byte must be escaped. [project]
	DefaultMaxMessageBytes = 2000
)

// Config configures a Gateway. Zero fields take the defaults above.
type Config struct {
	// Domain is the component's domain, e.g. "qq.example.org"; buddies are
	// <uin>@Domain.
	Domain string
	// Name is the gateway's name in service discovery.
	Name string
	// Version is what jabber:iq:version answers.
	Version string

	// QQ are the options of every QQ client. Server is the QQ HTTP URL. A
	// nil HTTPClient is replaced by one qqproto.NewHTTPClient() shared by
	// all sessions, so their keep-alive connections are reused.
	QQ qqproto.Options
	// NewQQ makes the QQ client of one account; nil means a
	// *qqproto.Client with the QQ options.
	NewQQ func(uin qqproto.UIN) QQ

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
	// ProfileFetches bounds the GetInfo requests of one roster import (the
	// nicknames of offline buddies not yet known); a negative value means
	// none.
	ProfileFetches int
	// MaxMessageBytes bounds the UTF-8 bytes of text in one CLTMSG; a longer
	// message is split on character boundaries into several.
	MaxMessageBytes int

	// Logger receives the gateway's log; nil discards it. Session lines
	// carry the fields jid and uin; passwords and their MD5 never appear.
	Logger logrus.FieldLogger
}

func (c *Config) validate() (jid.JID, error) {
	if c.Domain == "" {
		return jid.JID{}, errors.New("gateway: Config.Domain is empty; want the component domain, e.g. \"qq.example.org\"")
	}
	dom, err := jid.Parse(c.Domain)
	if err != nil || dom.Localpart() != "" || dom.Resourcepart() != "" {
		return jid.JID{}, fmt.Errorf("gateway: Config.Domain %q is not a bare domain like \"qq.example.org\"", c.Domain)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PollActive", &c.PollActive, DefaultPollActive},
		{"PollIdle", &c.PollIdle, DefaultPollIdle},
		{"ActiveFor", &c.ActiveFor, DefaultActiveFor},
		{"LoginBackoffMin", &c.LoginBackoffMin, DefaultLoginBackoffMin},
		{"LoginBackoffMax", &c.LoginBackoffMax, DefaultLoginBackoffMax},
		{"ShutdownTimeout", &c.ShutdownTimeout, DefaultShutdownTimeout},
		{"StatusInterval", &c.StatusInterval, 0},
	} {
		if *d.v < 0 {
			return jid.JID{}, fmt.Errorf("gateway: Config.%s is negative (%v)", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.PollActive > c.PollIdle {
		return jid.JID{}, fmt.Errorf("gateway: Config.PollActive (%v) is longer than Config.PollIdle (%v)", c.PollActive, c.PollIdle)
	}
	if c.LoginBackoffMin > c.LoginBackoffMax {
		return jid.JID{}, fmt.Errorf("gateway: Config.LoginBackoffMin (%v) is longer than Config.LoginBackoffMax (%v)", c.LoginBackoffMin, c.LoginBackoffMax)
	}
	if c.MaxInFlight < 0 {
		return jid.JID{}, fmt.Errorf("gateway: Config.MaxInFlight is negative (%d)", c.MaxInFlight)
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxMessageBytes < 0 || (c.MaxMessageBytes > 0 && c.MaxMessageBytes < minSplitSize) {
		return jid.JID{}, fmt.Errorf("gateway: Config.MaxMessageBytes is %d; want 0 (the default, %d) or at least %d", c.MaxMessageBytes, DefaultMaxMessageBytes, minSplitSize)
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.ProfileFetches == 0 {
		c.ProfileFetches = DefaultProfileFetches
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.Logger = l
	}
	if c.QQ.HTTPClient == nil {
		c.QQ.HTTPClient = qqproto.NewHTTPClient()
	}
	if c.NewQQ == nil {
		opts := c.QQ
		c.NewQQ = func(uin qqproto.UIN) QQ { return qqproto.NewClient(uin, opts) }
	}
	return dom, nil
}
