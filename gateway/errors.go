package gateway

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// condError is an error that already knows the stanza error it becomes:
// handlers return one for everything a user can cause.
type condError struct {
	cond stanza.Condition
	typ  stanza.ErrorType
	text string
	err  error // the cause, for logs; may be nil
}

func (e *condError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %s: %v", e.cond, e.text, e.err)
	}
	return fmt.Sprintf("%s: %s", e.cond, e.text)
}

func (e *condError) Unwrap() error { return e.err }

// newCondError builds a condError with the type RFC 6120 recommends for
// the condition.
func newCondError(cond stanza.Condition, format string, args ...any) *condError {
	return &condError{cond: cond, typ: defaultErrorType(cond), text: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *condError {
	return newCondError(stanza.BadRequest, format, args...)
}

func defaultErrorType(c stanza.Condition) stanza.ErrorType {
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

// errPurpose says what failed, where one Go error maps to different
// conditions: a refused QQ login is not-acceptable to a registration form
// (the user typed a wrong password) but not-authorized to a presence (the
// stored password no longer works).
type errPurpose int

const (
	forRequest      errPurpose = iota // an iq or message the user sent
	forRegistration                   // a jabber:iq:register set
	forLogin                          // a session login, answered as presence
)

// toStanzaError turns any error into the stanza error the user sees: a
// condition, its type and a human text. Internal details (SQL, file names)
// never reach the text; they are logged by the caller.
func toStanzaError(err error, purpose errPurpose) stanza.Error {
	se := func(cond stanza.Condition, typ stanza.ErrorType, text string) stanza.Error {
		e := stanza.Error{Condition: cond, Type: typ}
		if text != "" {
			e.Text = map[string]string{"": text}
		}
		return e
	}
	var (
		ce *condError
		le *qqproto.LoginError
		te *qqproto.TransportError
		re *qqproto.ResultError
	)
	switch {
	case errors.As(err, &ce):
		return se(ce.cond, ce.typ, ce.text)
	case errors.As(err, &le):
		text := le.Reason
		if text == "" {
			text = fmt.Sprintf("QQ refused the login (RS=%d)", le.Code)
		}
		if purpose == forRegistration {
			return se(stanza.NotAcceptable, stanza.Modify, text)
		}
		return se(stanza.NotAuthorized, stanza.Auth, text)
	case errors.Is(err, store.ErrConflict):
		return se(stanza.Conflict, stanza.Cancel, "This QQ number is already registered by another Jabber user.")
	case errors.As(err, &te), errors.Is(err, context.DeadlineExceeded):
		return se(stanza.RemoteServerTimeout, stanza.Wait, "The QQ server did not answer; try again later.")
	case errors.Is(err, qqproto.ErrNotLoggedIn):
		return se(stanza.ServiceUnavailable, stanza.Wait, "Not logged in to QQ at the moment; try again shortly.")
	case errors.As(err, &re):
		if re.Code == qqproto.ResInvalidUIN {
			if purpose == forRegistration {
				return se(stanza.NotAcceptable, stanza.Modify, "QQ does not know this QQ number.")
			}
			return se(stanza.ItemNotFound, stanza.Cancel, "QQ does not know this QQ number.")
		}
		return se(stanza.ServiceUnavailable, stanza.Wait, fmt.Sprintf("The QQ server refused the request (RES=%d).", re.Code))
	case errors.Is(err, context.Canceled):
		return se(stanza.ServiceUnavailable, stanza.Wait, "The gateway is shutting down.")
	}
	return se(stanza.InternalServerError, stanza.Wait, "Internal error of the gateway.")
}
