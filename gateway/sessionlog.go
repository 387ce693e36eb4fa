package gateway

import "github.com/sirupsen/logrus"

// sessionLog is a session's logger. The entry with the user's fields is
// made when something is logged rather than kept: a logrus.Entry and its
// map of fields cost about half a kilobyte per user, and most users log
// nothing for hours.
type sessionLog struct{ s *session }

// entry is the gateway's logger with the user's JID and, once registered,
// QQ number.
func (l sessionLog) entry() *logrus.Entry {
	s := l.s
	if s.reg == nil {
		return s.g.log.WithField("jid", s.key)
	}
	return s.g.log.WithFields(logrus.Fields{"jid": s.key, "uin": s.reg.UIN})
}

func (l sessionLog) WithError(err error) *logrus.Entry { return l.entry().WithError(err) }

func (l sessionLog) WithField(key string, value any) *logrus.Entry {
	return l.entry().WithField(key, value)
}

func (l sessionLog) WithFields(fields logrus.Fields) *logrus.Entry {
	return l.entry().WithFields(fields)
}

func (l sessionLog) Debug(args ...any) { l.entry().Debug(args...) }

func (l sessionLog) Info(args ...any) { l.entry().Info(args...) }

func (l sessionLog) Warn(args ...any) { l.entry().Warn(args...) }
