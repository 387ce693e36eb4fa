package qqproto

import (
	"errors"
	"fmt"
)

// ErrNotLoggedIn is a RES=20 reply: the server has no session for this
// number (never logged in, or dropped after LI seconds of silence). Log in
// again.
var ErrNotLoggedIn = errors.New("not logged in to QQ (RES=20)")

// ErrReplyTooLarge is a reply longer than the client reads (MaxReplyBytes).
// It is not retried: a repeat with the same SEQ would get the same reply
// from the server's memory.
var ErrReplyTooLarge = errors.New("QQ reply too large")

// LoginError is a Login the server refused (RS≠0); Reason is its RA text,
// such as 密码错误 (wrong password).
type LoginError struct {
	UIN    UIN
	Code   int
	Reason string
}

func (e *LoginError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("QQ refused login of %d (RS=%d)", e.UIN, e.Code)
	}
	return fmt.Sprintf("QQ refused login of %d: %s", e.UIN, e.Reason)
}

// ResultError is a reply with a RES other than 0 and 20.
type ResultError struct {
	Cmd  string
	Code int
}

func (e *ResultError) Error() string {
	if e.Code == ResInvalidUIN {
		return fmt.Sprintf("%s: invalid QQ number (RES=%d)", e.Cmd, e.Code)
	}
	return fmt.Sprintf("%s: QQ server answered RES=%d", e.Cmd, e.Code)
}

// TransportError is a request that got no usable reply after every retry:
// the server is unreachable, timed out, answered HTTP errors or garbage.
type TransportError struct {
	Cmd      string
	Attempts int
	Err      error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s: no reply from QQ server after %d attempts: %v", e.Cmd, e.Attempts, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }
