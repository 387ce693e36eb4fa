package xmppcomp

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Match them with errors.Is.
var (
	// ErrNotConnected is returned by the send methods while no connection to
	// the server is established (before the first handshake, or between a drop
	// and the reconnect). It is returned at once, without waiting.
	ErrNotConnected = errors.New("xmppcomp: not connected to the XMPP server")

	// ErrNotAuthorized means the server refused the component secret. It is
	// permanent: Run returns it instead of retrying.
	ErrNotAuthorized = errors.New("server refused the component secret")

	// ErrHostUnknown means the server has no component configured for the
	// domain. It is permanent: Run returns it instead of retrying.
	ErrHostUnknown = errors.New("server does not serve the component domain")

	// ErrConflict means another component is connected for the same domain.
	// Run keeps retrying: the other connection is often a stale one of ours.
	ErrConflict = errors.New("another component is connected for the domain")

	// ErrPingTimeout means the server did not answer a liveness ping within
	// Config.PingTimeout; the connection was considered dead and closed.
	ErrPingTimeout = errors.New("xmppcomp: server did not answer ping in time")

	// ErrAlreadyRunning is returned by Run when another Run of the same
	// Component is active.
	ErrAlreadyRunning = errors.New("xmppcomp: Run is already active for this component")
)

// HandshakeError reports that the server answered the XEP-0114 handshake with
// a stream error. Condition is the stream error condition (for example
// "not-authorized", "host-unknown", "conflict").
type HandshakeError struct {
	Domain    string // the component domain that was offered
	Server    string // host:port dialled
	Condition string
	Text      string // the server's human-readable text, if it sent one
}

func (e *HandshakeError) Error() string {
	var msg string
	switch e.Condition {
	case "not-authorized":
		msg = fmt.Sprintf("xmppcomp: server %s refused the secret for component domain %q (stream error not-authorized); check that the secret matches the server's and that the server declares %q as a component", e.Server, e.Domain, e.Domain)
	case "host-unknown":
		msg = fmt.Sprintf("xmppcomp: server %s does not serve component domain %q (stream error host-unknown); declare the component in the server configuration", e.Server, e.Domain)
	case "conflict":
		msg = fmt.Sprintf("xmppcomp: server %s already has a component connected for domain %q (stream error conflict)", e.Server, e.Domain)
	default:
		msg = fmt.Sprintf("xmppcomp: server %s rejected the handshake for component domain %q (stream error %s)", e.Server, e.Domain, e.Condition)
	}
	if e.Text != "" {
		msg += ": " + e.Text
	}
	return msg
}

// Is makes errors.Is(err, ErrNotAuthorized) (and ErrHostUnknown, ErrConflict)
// work on a *HandshakeError.
func (e *HandshakeError) Is(target error) bool {
	switch target {
	case ErrNotAuthorized:
		return e.Condition == "not-authorized"
	case ErrHostUnknown:
		return e.Condition == "host-unknown"
	case ErrConflict:
		return e.Condition == "conflict"
	}
	return false
}

// permanent reports whether retrying cannot help without a configuration
// change.
func (e *HandshakeError) permanent() bool {
	return e.Condition == "not-authorized" || e.Condition == "host-unknown"
}
