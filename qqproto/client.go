package qqproto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults of Options.
const (
	DefaultServer       = "http://tqq.tencent.com:8000/"
	DefaultClientCode   = "9326B87B234E7235" // the LC of the seed's Login line
	DefaultVersion      = "1.1"
	DefaultTimeout      = 10 * time.Second
	DefaultMaxAttempts  = 3
	DefaultRetryBackoff = 200 * time.Millisecond
)

// Page sizes the client asks for; the emulator caps List at 160 and
// Query_Stat at 50, as the historic clients asked.
const (
	listPageSize   = 160
	onlinePageSize = 50
)

// MaxReplyBytes bounds what one reply may take in memory; the largest
// honest reply (a GetMsgEx of 20 long messages) is far below it, and a
// text that long could not reach an XMPP user anyway.
const MaxReplyBytes = 1 << 20

// maxBackoff caps the doubling of the pause between attempts (before its
// jitter of ±50%).
const maxBackoff = 10 * time.Second

// Options configure a Client. The zero value of every field means its
// default, so Options{} talks to the historic server.
type Options struct {
	// Server is the URL requests are POSTed to.
	Server string
	// ClientCode is the LC of Login: 16 hex digits naming the client build.
	ClientCode string
	// Transport carries the requests. Share one among all Clients so their
	// connections to the server are kept alive and reused; nil means a new
	// NewTransport() for this Client alone.
	Transport *Transport
	// Timeout bounds one attempt of one request.
	Timeout time.Duration
	// MaxAttempts is how often a request whose reply was lost is sent, in
	// all; 1 means never retry.
	MaxAttempts int
	// RetryBackoff is the pause before the first retry; it doubles for each
	// further one (up to 10s), each jittered by ±50%.
	RetryBackoff time.Duration
	// Version is the VER every request carries.
	Version string
}

func (o Options) withDefaults() Options {
	if o.Server == "" {
		o.Server = DefaultServer
	}
	if o.ClientCode == "" {
		o.ClientCode = DefaultClientCode
	}
	if o.Transport == nil {
		o.Transport = NewTransport()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	return o
}

// Client speaks the QQ HTTP protocol for one QQ number. It is safe for
// concurrent use; requests of different Clients never wait for each other.
//
// Every request gets its own SEQ. A request whose reply was lost (network
// error, timeout, HTTP 5xx, a reply that cannot be read or is not for this
// request) is sent again with the same SEQ, so that a server remembering
// its replies answers the repeat without executing it twice: a message is
// never sent twice because of a retry. When every attempt failed the error
// is a *TransportError. A reply with RES=20 is ErrNotLoggedIn, any other
// non-zero RES a *ResultError; those are answers, and are not retried.
type Client struct {
	uin    UIN
	opts   Options
	server *server // opts.Server's pool in opts.Transport
	seq    *Seqs
	// unfetched is the SEQ of a GetMsgEx whose every attempt lost its reply
	// (0: none). The server may have handed the batch out already, so the
	// next Messages call asks again with that SEQ and gets the remembered
	// reply instead of losing the batch.
	unfetched atomic.Int64
}

// NewClient returns a Client for the QQ number uin. It does no I/O.
func NewClient(uin UIN, opts Options) *Client {
	opts = opts.withDefaults()
	return &Client{uin: uin, opts: opts, seq: NewSeqs(), server: opts.Transport.server(opts.Server)}
}

// UIN is the QQ number this Client speaks for.
func (c *Client) UIN() UIN { return c.uin }

func (c *Client) nextSeq() int64 { return c.seq.Next() }

// Login starts a session. passwordMD5 is the lowercase hex MD5 of the
// password (see PasswordMD5); the password itself is never sent. A refusal
// is a *LoginError whose Reason is the server's text.
func (c *Client) Login(ctx context.Context, passwordMD5 string) (LoginResult, error) {
	pw, err := normalizeMD5(passwordMD5)
	if err != nil {
		return LoginResult{}, fmt.Errorf("login %d: %w", c.uin, err)
	}
	if !isHex(c.opts.ClientCode, 16) {
		return LoginResult{}, fmt.Errorf("login %d: client code (LC) %q is not 16 hex digits", c.uin, c.opts.ClientCode)
	}
	var res LoginResult
	err = c.call(ctx, CmdLogin, func(f *Fields) {
		f.setRaw("PS", pw)
		f.setRaw("M5", "1")
		f.Set("LC", c.opts.ClientCode)
	}, into(&res, func(f Fields) (LoginResult, error) { return ReadLogin(f, c.uin) }))
	if err != nil {
		return LoginResult{}, fmt.Errorf("login %d: %w", c.uin, err)
	}
	return res, nil
}

// normalizeMD5 checks that s is 32 hex digits and lowercases it. The value
// never appears in an error: it is as good as the password to this server.
func normalizeMD5(s string) (string, error) {
	if !isHex(s, 32) {
		return "", errors.New("password MD5 must be 32 hex digits")
	}
	return strings.ToLower(s), nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// Buddies returns the numbers on the user's buddy list, asking page after
// page until the server says it sent the last one.
func (c *Client) Buddies(ctx context.Context) ([]UIN, error) {
	all, err := pages(ctx, c, CmdList, listPageSize, ReadList)
	if err != nil {
		return nil, fmt.Errorf("buddy list of %d: %w", c.uin, err)
	}
	return all, nil
}

// OnlineBuddies returns the buddies that are online now, with their state,
// nickname and face. The user's own number, which the server lists among
// them, is left out.
func (c *Client) OnlineBuddies(ctx context.Context) ([]Buddy, error) {
	all, err := pages(ctx, c, CmdQueryStat, onlinePageSize, ReadOnline)
	if err != nil {
		return nil, fmt.Errorf("online buddies of %d: %w", c.uin, err)
	}
	return slices.DeleteFunc(all, func(b Buddy) bool { return b.UIN == c.uin }), nil
}

// Bounds of one paged listing, so that a server whose paging never ends
// (FN never 1) costs a session a bounded number of requests and bounded
// memory, then an error, instead of requests for ever and an ever-growing
// list. maxPagedEntries is far more than any buddy list holds. An honest
// server fills each page to the TN asked, so maxPages pages of the smaller
// size asked (Query_Stat's) already hold maxPagedEntries: only a server
// that sends short pages for ever reaches maxPages first (200 requests,
// about 10 s at the ≈22 requests/s such a loop ran).
const (
	maxPagedEntries = 10000
	maxPages        = maxPagedEntries / onlinePageSize
)

// pages asks for cmd page after page, size entries at a time, until the
// server sends its last page, and returns the entries of all pages as read
// decodes them. It fails
// rather than loop when the paging does not advance or does not end within
// maxPages pages and maxPagedEntries entries.
func pages[T any](ctx context.Context, c *Client, cmd string, size int, read func(Fields) ([]T, Page, error)) ([]T, error) {
	var all []T
	start := 0
	for range maxPages {
		var (
			got  []T
			page Page
		)
		err := c.call(ctx, cmd, func(f *Fields) {
			f.SetInt("TN", int64(size))
			f.SetInt("UN", int64(start))
		}, func(f Fields) error {
			var err error
			got, page, err = read(f)
			return err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
		switch {
		case page.Last:
			return all, nil
		case page.Count <= 0:
			// Asking again from the same start would loop for ever.
			return nil, fmt.Errorf("%w: page at %d is empty but not the last", ErrMalformed, start)
		case len(all) > maxPagedEntries:
			return nil, fmt.Errorf("%w: more than %d entries and still not the last page", ErrMalformed, maxPagedEntries)
		}
		start += page.Count
	}
	return nil, fmt.Errorf("%w: paging did not end within %d pages", ErrMalformed, maxPages)
}

// profileLevel is the LV of GetInfo: 3, the detailed record, which adds
// city, country and mobile to what 2 gives.
const profileLevel = 3

// Profile returns the GetInfo record of uin. A number the server does not
// know is a *ResultError (RES=5).
func (c *Client) Profile(ctx context.Context, uin UIN) (Profile, error) {
	var p Profile
	err := c.call(ctx, CmdGetInfo, func(f *Fields) {
		f.SetInt("LV", profileLevel)
		f.SetInt("UN", int64(uin))
	}, into(&p, ReadProfile))
	if err != nil {
		return Profile{}, fmt.Errorf("profile of %d: %w", uin, err)
	}
	if p.UIN == 0 {
		p.UIN = uin
	}
	return p, nil
}

// AddBuddy asks to add uin to the buddy list. The result says whether it
// was added at once or needs their authorisation (then send AnswerAdd with
// AckRequest), or whether they accept nobody.
func (c *Client) AddBuddy(ctx context.Context, uin UIN) (AddResult, error) {
	var r AddResult
	err := c.call(ctx, CmdAddToList, func(f *Fields) {
		f.SetInt("UN", int64(uin))
	}, into(&r, ReadAdd))
	if err != nil {
		return 0, fmt.Errorf("add %d to buddies of %d: %w", uin, c.uin, err)
	}
	return r, nil
}

// AnswerAdd answers uin's request to add the user (AckApprove, AckReject),
// or asks uin for the authorisation AddBuddy said is needed (AckRequest).
// reason is the text they see.
func (c *Client) AnswerAdd(ctx context.Context, uin UIN, code AckCode, reason string) error {
	switch code {
	case AckApprove, AckReject, AckRequest:
	default:
		return fmt.Errorf("answer add request of %d: unknown answer code %d", uin, code)
	}
	err := c.call(ctx, CmdAckAddToList, func(f *Fields) {
		f.SetInt("UN", int64(uin))
		f.SetInt("CD", int64(code))
		f.Set("RS", reason)
	}, nil)
	if err != nil {
		return fmt.Errorf("answer add request of %d: %w", uin, err)
	}
	return nil
}

// RemoveBuddy deletes uin from the buddy list.
func (c *Client) RemoveBuddy(ctx context.Context, uin UIN) error {
	err := c.call(ctx, CmdDelFromList, func(f *Fields) {
		f.SetInt("UN", int64(uin))
	}, nil)
	if err != nil {
		return fmt.Errorf("remove %d from buddies of %d: %w", uin, c.uin, err)
	}
	return nil
}

// SetStatus changes the state the user's buddies see.
func (c *Client) SetStatus(ctx context.Context, st Status) error {
	if !st.Valid() {
		return fmt.Errorf("set status of %d: %v is not a QQ state (10, 20, 30, 40)", c.uin, st)
	}
	err := c.call(ctx, CmdChangeStat, func(f *Fields) {
		f.SetInt("ST", int64(st))
	}, nil)
	if err != nil {
		return fmt.Errorf("set status of %d to %v: %w", c.uin, st, err)
	}
	return nil
}

// Logout ends the session.
func (c *Client) Logout(ctx context.Context) error {
	if err := c.call(ctx, CmdLogout, nil, nil); err != nil {
		return fmt.Errorf("logout %d: %w", c.uin, err)
	}
	return nil
}

// Messages fetches the messages and notices waiting for the user, oldest
// first; the server forgets them once fetched. A server may hand out only
// part of its queue per call (the emulator 20), so poll again soon after a
// full batch. Polling is also what keeps the session alive (see
// LoginResult).
//
// When every attempt of a call lost its reply, the next call repeats that
// request with the same SEQ, so a batch the server handed out on a lost
// reply is still received (within the server's memory of replies).
func (c *Client) Messages(ctx context.Context) ([]Message, error) {
	seq := c.unfetched.Swap(0)
	if seq == 0 {
		seq = c.nextSeq()
	}
	ms, err := c.MessagesSeq(ctx, seq)
	var te *TransportError
	if errors.As(err, &te) {
		c.unfetched.CompareAndSwap(0, seq)
	}
	return ms, err
}

// MessagesSeq is Messages with the caller's SEQ, for a caller that keeps
// the SEQ of a GetMsgEx on disk before sending it: after a lost reply
// (a *TransportError), a re-login or a crash it asks again with the same
// SEQ and gets the batch the server handed out, from its memory.
func (c *Client) MessagesSeq(ctx context.Context, seq int64) ([]Message, error) {
	var ms []Message
	if err := c.callSeq(ctx, seq, CmdGetMsgEx, nil, into(&ms, ReadMessages)); err != nil {
		return nil, fmt.Errorf("messages of %d: %w", c.uin, err)
	}
	return ms, nil
}

// SendMessage sends text to the buddy to. Any text is safe: it is escaped
// so that it arrives unchanged and can never add a field of its own.
func (c *Client) SendMessage(ctx context.Context, to UIN, text string) error {
	return c.SendMessageSeq(ctx, c.nextSeq(), to, text)
}

// SendMessageSeq is SendMessage with the caller's SEQ, for a caller that
// stores the SEQ with the message before the first attempt: a repeat with
// it, after a lost reply, a re-login or a restart, is answered from the
// server's memory and not delivered twice. A *TransportError means the
// message may have been delivered; repeat it with the same SEQ.
func (c *Client) SendMessageSeq(ctx context.Context, seq int64, to UIN, text string) error {
	err := c.callSeq(ctx, seq, CmdCLTMSG, func(f *Fields) {
		f.SetInt("UN", int64(to))
		f.Set("MG", text)
	}, nil)
	if err != nil {
		return fmt.Errorf("message from %d to %d: %w", c.uin, to, err)
	}
	return nil
}

// call sends one request — VER, CMD, SEQ, UIN, then what fill adds — and
// hands the reply to decode once its RES is 0. It retries with the same
// SEQ while the reply is lost, as the Client's doc says.
func (c *Client) call(ctx context.Context, cmd string, fill func(*Fields), decode func(Fields) error) error {
	return c.callSeq(ctx, c.nextSeq(), cmd, fill, decode)
}

func (c *Client) callSeq(ctx context.Context, seq int64, cmd string, fill func(*Fields), decode func(Fields) error) error {
	req := make(Fields, 0, 8)
	req.Set("VER", c.opts.Version)
	req.setRaw("CMD", cmd)
	req.SetInt("SEQ", seq)
	req.SetInt("UIN", int64(c.uin))
	if fill != nil {
		fill(&req)
	}
	body := req.String()

	var last error
	var bo *backoff.ExponentialBackOff // made on the first retry: most requests need none
	for attempt := 1; ; attempt++ {
		retry, err := c.attempt(ctx, cmd, seq, body, decode)
		var hs *httpStatusError
		if !retry && errors.As(err, &hs) {
			return &TransportError{Cmd: cmd, Attempts: attempt, Err: err}
		}
		if err == nil || !retry {
			return err
		}
		last = err
		if ctx.Err() != nil {
			return &TransportError{Cmd: cmd, Attempts: attempt, Err: contextCause(ctx, last)}
		}
		if attempt >= c.opts.MaxAttempts {
			return &TransportError{Cmd: cmd, Attempts: attempt, Err: last}
		}
		if bo == nil {
			bo = c.newBackOff()
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return &TransportError{Cmd: cmd, Attempts: attempt, Err: contextCause(ctx, last)}
		case <-t.C:
		}
	}
}

// into is a decode for call that keeps what read makes of the reply in
// *out.
func into[T any](out *T, read func(Fields) (T, error)) func(Fields) error {
	return func(f Fields) (err error) {
		*out, err = read(f)
		return err
	}
}

// contextCause is the error of a request its caller gave up on: the
// context's error, which callers test for, with the last failure as text.
func contextCause(ctx context.Context, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	return fmt.Errorf("%w (last failure: %v)", ctx.Err(), last)
}

// newBackOff returns the pauses between the attempts of one request:
// RetryBackoff doubled per attempt up to maxBackoff, each jittered by ±50%
// so that sessions that failed together do not retry together. It has no
// time limit of its own (MaxElapsedTime 0): Options.MaxAttempts and the
// caller's context bound the retries.
func (c *Client) newBackOff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(min(c.opts.RetryBackoff, maxBackoff)),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(maxBackoff),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
}

// attempt sends body once. It reports whether a failure means the reply
// was lost, so that sending the same request again is right.
func (c *Client) attempt(ctx context.Context, cmd string, seq int64, body string, decode func(Fields) error) (retry bool, err error) {
	deadline := time.Now().Add(c.opts.Timeout)
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxBound = d, true
	}
	resp, err := c.server.post(ctx, body, deadline, MaxReplyBytes)
	switch {
	case errors.Is(err, errBadURL), errors.Is(err, ErrReplyTooLarge):
		return false, fmt.Errorf("%s: %w", cmd, err)
	case err != nil && isTimeout(err) && ctxBound:
		return true, fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	case err != nil && isTimeout(err):
		return true, fmt.Errorf("no reply within %v: %w", c.opts.Timeout, err)
	case err != nil:
		return true, err
	}
	switch {
	case resp.status >= 500, resp.status == http.StatusRequestTimeout, resp.status == http.StatusTooManyRequests:
		return true, &httpStatusError{Status: statusText(resp.status)}
	case resp.status != http.StatusOK:
		// The server understood the request and refused it: sending the
		// same bytes again cannot help.
		return false, &httpStatusError{Status: statusText(resp.status)}
	}
	f, err := Parse(resp.body)
	if err != nil {
		return true, err
	}
	h, err := ReadHeader(f)
	if err != nil {
		return true, err
	}
	// A reply to some other request (a confused proxy, a server answering
	// from the wrong memory) is as good as none. An empty SEQ and SEQ=-1,
	// which the historic server sent in some replies, echo nothing and are
	// accepted; an empty UIN (its Login reply) likewise.
	if !strings.EqualFold(h.Cmd, cmd) {
		return true, fmt.Errorf("%w: reply is for CMD=%s", ErrMalformed, truncate(h.Cmd, 20))
	}
	if h.Seq != seq && h.Seq != 0 && h.Seq != -1 {
		return true, fmt.Errorf("%w: reply is for SEQ=%d, sent SEQ=%d", ErrMalformed, h.Seq, seq)
	}
	if h.UIN != 0 && h.UIN != c.uin {
		return true, fmt.Errorf("%w: reply is for UIN=%d", ErrMalformed, h.UIN)
	}
	if err := h.Err(); err != nil {
		return false, err
	}
	if decode == nil {
		return false, nil
	}
	if err := decode(f); err != nil {
		// A damaged reply is retried like a lost one; any other error (a
		// refused login) is the server's answer.
		return errors.Is(err, ErrMalformed), err
	}
	return false, nil
}

// statusText is an HTTP status as net/http writes it: "502 Bad Gateway".
func statusText(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// httpStatusError is a reply whose HTTP status is not 200 OK.
type httpStatusError struct{ Status string }

func (e *httpStatusError) Error() string { return "HTTP " + e.Status }
