package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"qqxmpp/store"
)

// userError is an error the gateway itself raises for something a user
// did; it already knows the stanza error it becomes.
type userError struct {
	cond stanza.Condition
	text string
	err  error  // the cause, for logs; may be nil
	app  string // an XEP-0050 condition beside cond (bad-sessionid, …), or ""
}

func (e *userError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %s: %v", e.cond, e.text, e.err)
	}
	return fmt.Sprintf("%s: %s", e.cond, e.text)
}

func (e *userError) Unwrap() error { return e.err }

func newUserError(cond stanza.Condition, format string, args ...any) *userError {
	return &userError{cond: cond, text: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *userError {
	return newUserError(stanza.BadRequest, format, args...)
}

// newCommandError is a refusal of an ad-hoc command with its XEP-0050
// condition (section 4.6), which clients show beside cond.
func newCommandError(cond stanza.Condition, app, format string, args ...any) *userError {
	e := newUserError(cond, format, args...)
	e.app = app
	return e
}

// appCondition is the XEP-0050 condition of err, or "".
func appCondition(err error) string {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.app
	}
	return ""
}

// The gateway's own refusals.
var (
	errRegistrationRequired = newUserError(stanza.RegistrationRequired, "Register your QQ number with this gateway first.")
	errNotRegistered        = newUserError(stanza.RegistrationRequired, "You are not registered with this gateway.")
	errNoGroupChat          = newUserError(stanza.FeatureNotImplemented, "QQ has no group chat here.")
	errMalformed            = badRequest("The stanza is not well-formed.")
	errNoPayload            = badRequest("The request has no payload.")
	// errStoreGone: the database file was deleted under the gateway, so a
	// registration stored now would be gone after a restart.
	errStoreGone = newUserError(stanza.InternalServerError, "The gateway cannot keep registrations right now; try again later.")
	// errCannotStore: the database takes no writes (disk full, read-only),
	// so a message that could not be kept is refused rather than sent
	// without the guarantee.
	errCannotStore    = newUserError(stanza.ResourceConstraint, "The gateway cannot store your message right now, so it was not sent; try again later.")
	errBadSessionID   = newCommandError(stanza.BadRequest, "bad-sessionid", "No such command session: it ended, or it was never begun.")
	errSessionExpired = newCommandError(stanza.NotAllowed, "session-expired", "The command waited too long for an answer and ended; run it again.")
)

// errMaybeDelivered answers a message the QQ server never confirmed
// however often it was sent (with one SEQ, so never delivered twice).
func errMaybeDelivered(d time.Duration) error {
	return newUserError(stanza.RemoteServerTimeout, "The QQ server did not confirm this message for %s; it may have been delivered. The gateway will not send it again.",
		d.Round(time.Second))
}

// errNotAContact answers a stanza to a JID whose localpart is no QQ number.
func errNotAContact(localpart string) error {
	return newUserError(stanza.ItemNotFound, "%s is not a QQ contact: the part before @ must be a QQ number", localpart)
}

// errNoQQSession is the cause of every errNotOnline, for the metrics.
var errNoQQSession = errors.New("no QQ session")

// errNotOnline answers what needs QQ while the session is not logged in.
func errNotOnline(state loginState, what string) error {
	e := newUserError(stanza.ServiceUnavailable, "Not logged in to QQ (%s): %s Go online with the gateway and try again.", state, what)
	e.err = errNoQQSession
	return e
}

// withReason puts QQ's own words, if any, beside the English text:
// "QQ refused the password (密码错误)".
func withReason(text, reason string) string {
	if reason = strings.TrimSpace(reason); reason != "" {
		return text + " (" + reason + ")"
	}
	return text
}

// errorType is the type RFC 6120 recommends for a condition.
func errorType(c stanza.Condition) stanza.ErrorType {
	switch c {
	case stanza.BadRequest, stanza.NotAcceptable, stanza.JIDMalformed, stanza.PolicyViolation, stanza.UnexpectedRequest:
		return stanza.Modify
	case stanza.NotAuthorized, stanza.Forbidden, stanza.RegistrationRequired, stanza.SubscriptionRequired:
		return stanza.Auth
	case stanza.RemoteServerTimeout, stanza.ResourceConstraint, stanza.InternalServerError:
		return stanza.Wait
	}
	return stanza.Cancel
}

// errPurpose says what failed, where one error maps to different
// conditions: a refused QQ login is not-acceptable to a registration form
// (the user typed a wrong password) but not-authorized to a presence (the
// stored password no longer works).
type errPurpose int

const (
	forRequest      errPurpose = iota // an iq, message or presence the user sent
	forRegistration                   // a jabber:iq:register set
	forLogin                          // a session login, answered as presence
)

// stanzaError is the one place an error becomes what the user sees: a
// condition, its type and a human text. Internal details (SQL, file names)
// never reach the text; callers log them.
func stanzaError(err error, purpose errPurpose) stanza.Error {
	cond, text := condition(err, purpose)
	e := stanza.Error{Condition: cond, Type: errorType(cond)}
	if cond == stanza.ServiceUnavailable && !errors.As(err, new(*userError)) {
		e.Type = stanza.Wait // QQ or the gateway is busy: worth trying again
	}
	if text != "" {
		e.Text = map[string]string{"": text}
	}
	return e
}

func condition(err error, purpose errPurpose) (stanza.Condition, string) {
	var (
		ue *userError
		le *LoginRefusedError
		ne *UnreachableError
		re *RefusedError
	)
	switch {
	case errors.As(err, &ue):
		return ue.cond, ue.text
	case errors.As(err, &le):
		if purpose == forRegistration {
			return stanza.NotAcceptable, withReason("QQ refused this QQ number or password", le.Reason) + "."
		}
		return stanza.NotAuthorized, withReason("QQ refused the stored password", le.Reason) +
			"; register again with the current one."
	case errors.Is(err, store.ErrConflict):
		return stanza.Conflict, "This QQ number is already registered by another Jabber user."
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return stanza.RemoteServerTimeout, "The QQ server did not answer; try again later."
	case errors.Is(err, ErrSessionLost):
		return stanza.ServiceUnavailable, "Not logged in to QQ at the moment; try again shortly."
	case errors.Is(err, ErrUnknownNumber):
		if purpose == forRegistration {
			return stanza.NotAcceptable, "QQ does not know this QQ number."
		}
		return stanza.ItemNotFound, "QQ does not know this QQ number."
	case errors.Is(err, ErrAcceptsNobody):
		return stanza.NotAllowed, "This QQ user accepts nobody as a buddy."
	case errors.As(err, &re):
		return stanza.ServiceUnavailable, "The QQ server refused the request."
	case errors.Is(err, context.Canceled):
		return stanza.ServiceUnavailable, "The gateway is shutting down."
	}
	return stanza.InternalServerError, "Internal error of the gateway."
}
