package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"qqxmpp/qqproto"
)

// QQ is everything the gateway asks of the legacy network for one account.
// It is the one seam where another network (or a test fake) plugs in. Its
// methods fail with the gateway's own errors (ErrSessionLost,
// ErrUnknownNumber, ErrAcceptsNobody, *LoginRefusedError, *UnreachableError,
// *RefusedError), so nothing past this file reads protocol codes.
type QQ interface {
	Login(ctx context.Context, passwordMD5 string) (qqproto.LoginResult, error)
	Buddies(ctx context.Context) ([]qqproto.UIN, error)
	OnlineBuddies(ctx context.Context) ([]qqproto.Buddy, error)
	Profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error)
	AddBuddy(ctx context.Context, uin qqproto.UIN) (qqproto.AddResult, error)
	AnswerAdd(ctx context.Context, uin qqproto.UIN, code qqproto.AckCode, reason string) error
	RemoveBuddy(ctx context.Context, uin qqproto.UIN) error
	SetStatus(ctx context.Context, st qqproto.Status) error
	Logout(ctx context.Context) error
	// Messages and SendMessage take the SEQ the caller stored before the
	// first attempt: a repeat with it, after a lost reply, a re-login or a
	// restart, is answered from the server's memory (see qqproto.Seqs). An
	// *UnreachableError means the request may have been carried out.
	Messages(ctx context.Context, seq int64) ([]qqproto.Message, error)
	SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error
}

// Errors of the QQ seam.
var (
	// ErrSessionLost: the server no longer knows the session (QQ's RES=20);
	// a quiet re-login fixes it.
	ErrSessionLost = errors.New("the QQ server ended the session")
	// ErrUnknownNumber: QQ knows no account with that number.
	ErrUnknownNumber = errors.New("QQ does not know this number")
	// ErrAcceptsNobody: the account lets nobody add it as a buddy.
	ErrAcceptsNobody = errors.New("this QQ user accepts nobody as a buddy")
)

// LoginRefusedError is a login QQ refused; Reason is its text, such as
// 密码错误 (wrong password), possibly empty.
type LoginRefusedError struct {
	Reason string
	Err    error
}

func (e *LoginRefusedError) Error() string { return "QQ refused the login: " + e.Err.Error() }
func (e *LoginRefusedError) Unwrap() error { return e.Err }

// UnreachableError is a request that got no usable answer: the QQ server
// is down, slow or answering garbage.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "QQ server unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// RefusedError is any other refusal of a request by the QQ server.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return "QQ refused the request: " + e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// resAcceptsNobody is what a server answers Ack_AddToList CD=2 with when
// the account accepts nobody (the emulator does, and so may a real one).
const resAcceptsNobody = 3

// qqClient adapts *qqproto.Client to QQ: the protocol's errors become the
// seam's.
type qqClient struct{ c *qqproto.Client }

func newQQClient(uin qqproto.UIN, opts qqproto.Options) QQ {
	return qqClient{qqproto.NewClient(uin, opts)}
}

// seamError translates an error of qqproto into the seam's.
func seamError(err error) error {
	var (
		le *qqproto.LoginError
		te *qqproto.TransportError
		re *qqproto.ResultError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, qqproto.ErrNotLoggedIn):
		return fmt.Errorf("%w: %w", ErrSessionLost, err)
	case errors.As(err, &le):
		return &LoginRefusedError{Reason: le.Reason, Err: err}
	case errors.As(err, &re) && re.Code == qqproto.ResInvalidUIN:
		return fmt.Errorf("%w: %w", ErrUnknownNumber, err)
	case errors.As(err, &re):
		return &RefusedError{Err: err}
	case errors.As(err, &te):
		return &UnreachableError{Err: err}
	}
	return err // context errors and the like keep their identity
}

func (q qqClient) Login(ctx context.Context, md5 string) (qqproto.LoginResult, error) {
	r, err := q.c.Login(ctx, md5)
	return r, seamError(err)
}

func (q qqClient) Buddies(ctx context.Context) ([]qqproto.UIN, error) {
	r, err := q.c.Buddies(ctx)
	return r, seamError(err)
}

func (q qqClient) OnlineBuddies(ctx context.Context) ([]qqproto.Buddy, error) {
	r, err := q.c.OnlineBuddies(ctx)
	return r, seamError(err)
}

func (q qqClient) Profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	r, err := q.c.Profile(ctx, uin)
	return r, seamError(err)
}

func (q qqClient) AddBuddy(ctx context.Context, uin qqproto.UIN) (qqproto.AddResult, error) {
	r, err := q.c.AddBuddy(ctx, uin)
	return r, seamError(err)
}

func (q qqClient) AnswerAdd(ctx context.Context, uin qqproto.UIN, code qqproto.AckCode, reason string) error {
	err := q.c.AnswerAdd(ctx, uin, code, reason)
	var re *qqproto.ResultError
	if code == qqproto.AckRequest && errors.As(err, &re) && re.Code == resAcceptsNobody {
		return fmt.Errorf("%w: %w", ErrAcceptsNobody, err)
	}
	return seamError(err)
}

func (q qqClient) RemoveBuddy(ctx context.Context, uin qqproto.UIN) error {
	return seamError(q.c.RemoveBuddy(ctx, uin))
}

func (q qqClient) SetStatus(ctx context.Context, st qqproto.Status) error {
	return seamError(q.c.SetStatus(ctx, st))
}

func (q qqClient) Logout(ctx context.Context) error { return seamError(q.c.Logout(ctx)) }

func (q qqClient) Messages(ctx context.Context, seq int64) ([]qqproto.Message, error) {
	r, err := q.c.MessagesSeq(ctx, seq)
	return r, seamError(err)
}

func (q qqClient) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	return seamError(q.c.SendMessageSeq(ctx, seq, to, text))
}

// meteredQQ counts and times every request of the QQ it wraps, so that
// Metrics see each call of the seam, whoever made the client.
type meteredQQ struct {
	qq QQ
	m  *Metrics
}

// metered runs one request of command cmd and reports it to m.
func metered[T any](m *Metrics, cmd string, do func() (T, error)) (T, error) {
	start := time.Now() // the request's real duration, whatever clock the gateway runs on
	v, err := do()
	m.qqRequest(cmd, err, time.Since(start))
	return v, err
}

// meteredErr is metered for a request that returns only an error.
func meteredErr(m *Metrics, cmd string, do func() error) error {
	_, err := metered(m, cmd, func() (struct{}, error) { return struct{}{}, do() })
	return err
}

func (q meteredQQ) Login(ctx context.Context, md5 string) (qqproto.LoginResult, error) {
	return metered(q.m, qqproto.CmdLogin, func() (qqproto.LoginResult, error) { return q.qq.Login(ctx, md5) })
}

func (q meteredQQ) Buddies(ctx context.Context) ([]qqproto.UIN, error) {
	return metered(q.m, qqproto.CmdList, func() ([]qqproto.UIN, error) { return q.qq.Buddies(ctx) })
}

func (q meteredQQ) OnlineBuddies(ctx context.Context) ([]qqproto.Buddy, error) {
	return metered(q.m, qqproto.CmdQueryStat, func() ([]qqproto.Buddy, error) { return q.qq.OnlineBuddies(ctx) })
}

func (q meteredQQ) Profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	return metered(q.m, qqproto.CmdGetInfo, func() (qqproto.Profile, error) { return q.qq.Profile(ctx, uin) })
}

func (q meteredQQ) AddBuddy(ctx context.Context, uin qqproto.UIN) (qqproto.AddResult, error) {
	return metered(q.m, qqproto.CmdAddToList, func() (qqproto.AddResult, error) { return q.qq.AddBuddy(ctx, uin) })
}

func (q meteredQQ) AnswerAdd(ctx context.Context, uin qqproto.UIN, code qqproto.AckCode, reason string) error {
	return meteredErr(q.m, qqproto.CmdAckAddToList, func() error { return q.qq.AnswerAdd(ctx, uin, code, reason) })
}

func (q meteredQQ) RemoveBuddy(ctx context.Context, uin qqproto.UIN) error {
	return meteredErr(q.m, qqproto.CmdDelFromList, func() error { return q.qq.RemoveBuddy(ctx, uin) })
}

func (q meteredQQ) SetStatus(ctx context.Context, st qqproto.Status) error {
	return meteredErr(q.m, qqproto.CmdChangeStat, func() error { return q.qq.SetStatus(ctx, st) })
}

func (q meteredQQ) Logout(ctx context.Context) error {
	return meteredErr(q.m, qqproto.CmdLogout, func() error { return q.qq.Logout(ctx) })
}

func (q meteredQQ) Messages(ctx context.Context, seq int64) ([]qqproto.Message, error) {
	return metered(q.m, qqproto.CmdGetMsgEx, func() ([]qqproto.Message, error) { return q.qq.Messages(ctx, seq) })
}

func (q meteredQQ) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	return meteredErr(q.m, qqproto.CmdCLTMSG, func() error { return q.qq.SendMessage(ctx, seq, to, text) })
}
