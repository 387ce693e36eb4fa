package qqsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"qqxmpp/qqproto"
)

// AddAccount adds an account to the world. Buddies need not exist yet. If
// the account starts online (State 10 or 30), logged-in accounts that
// already list it get a state notice.
func (s *Server) AddAccount(a Account) error {
	a, err := a.check()
	if err != nil {
		return fmt.Errorf("account %d: %w", a.UIN, err)
	}
	return s.inWorld(nil, func(now time.Time, _ []*account) error {
		if s.accounts[a.UIN] != nil {
			return fmt.Errorf("account %d: %w", a.UIN, &FieldError{"uin", "already exists"})
		}
		acct := &account{pwMD5: qqproto.PasswordMD5(a.Password), state: qqproto.StatusOffline}
		st, buddies := a.State, a.Buddies
		a.Password = ""
		a.Buddies = nil // the live list is account.buddies
		acct.Account = a
		s.accounts[a.UIN] = acct
		for _, b := range sortedUINs(buddies) {
			s.addBuddy(acct, b)
		}
		s.setState(acct, st, now)
		return nil
	})
}

// named is an account a control call names, with the field naming it.
type named struct {
	field string
	uin   qqproto.UIN
}

// inWorld is how every control call starts: it locks the world, ends the
// sessions gone silent (so that fn sees them as a client would) and looks
// up the accounts names, then runs fn with them in the same order. If one
// does not exist fn does not run, and the error Is ErrUnknownAccount and
// is a *FieldError naming the field that named it.
func (s *Server) inWorld(names []named, fn func(now time.Time, accts []*account) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.expireLocked(now)
	accts := make([]*account, len(names))
	for i, n := range names {
		a := s.accounts[n.uin]
		if a == nil {
			return &unknownAccountError{FieldError{n.field, fmt.Sprintf("%d: %v", n.uin, ErrUnknownAccount)}}
		}
		accts[i] = a
	}
	return fn(now, accts)
}

// unknownAccountError is both a *FieldError, so that the control API names
// the field, and ErrUnknownAccount, so that it answers 404.
type unknownAccountError struct{ FieldError }

func (e *unknownAccountError) Unwrap() []error { return []error{&e.FieldError, ErrUnknownAccount} }

// Send makes account from send text to account to, as its CLTMSG would.
func (s *Server) Send(from, to qqproto.UIN, text string) error {
	if text == "" {
		return &FieldError{"text", "must not be empty"}
	}
	return s.inWorld([]named{{"from", from}, {"to", to}}, func(now time.Time, a []*account) error {
		s.deliver(a[1], InboxItem{Type: qqproto.MsgBuddy, From: from, Text: text, At: now}, true)
		return nil
	})
}

// SetState changes an account's state, as its Change_Stat would.
func (s *Server) SetState(uin qqproto.UIN, st qqproto.Status) error {
	if !st.Valid() {
		return &FieldError{"state", fmt.Sprintf("is %d; must be 10, 20, 30 or 40", st)}
	}
	return s.inWorld([]named{{"uin", uin}}, func(now time.Time, a []*account) error {
		s.setState(a[0], st, now)
		return nil
	})
}

// EndSession ends uin's session as the server does after its idle
// timeout: the next request of that number is answered RES=20 until it
// logs in again. Its replay memory stays. Ending no session is no error.
func (s *Server) EndSession(uin qqproto.UIN) error {
	return s.inWorld([]named{{"uin", uin}}, func(now time.Time, a []*account) error {
		if a[0].sess != nil {
			s.logout(a[0], now)
		}
		return nil
	})
}

// Ack makes account from answer about account to, as its Ack_AddToList
// would: AckRequest asks to add them, AckApprove and AckReject answer
// their request.
func (s *Server) Ack(from, to qqproto.UIN, cd qqproto.AckCode, reason string) error {
	if cd < qqproto.AckApprove || cd > qqproto.AckRequest {
		return &FieldError{"cd", fmt.Sprintf("is %d; must be 0 (approve), 1 (reject) or 2 (request)", cd)}
	}
	return s.inWorld([]named{{"from", from}, {"to", to}}, func(now time.Time, a []*account) error {
		if a[0] == a[1] {
			return &FieldError{"to", "an account cannot add itself"}
		}
		if s.ack(a[0], a[1], cd, reason, now) == ResRefused {
			return &FieldError{"to", fmt.Sprintf("%d accepts no buddy requests (auth 3)", to)}
		}
		return nil
	})
}

// Inbox returns everything delivered to uin, oldest first: messages,
// notices and add requests (at most the newest 10000); nil for an unknown
// number.
func (s *Server) Inbox(uin qqproto.UIN) []InboxItem {
	in, _ := ofAccount(s, uin, (*account).recentInbox)
	return in
}

func (a *account) recentInbox() []InboxItem {
	in := a.inbox
	if len(in) > inboxLimit {
		in = in[len(in)-inboxLimit:]
	}
	return append([]InboxItem{}, in...)
}

// ofAccount returns what get makes of uin's account, read under inWorld.
func ofAccount[T any](s *Server, uin qqproto.UIN, get func(*account) T) (T, error) {
	var v T
	err := s.inWorld([]named{{"uin", uin}}, func(_ time.Time, a []*account) error {
		v = get(a[0])
		return nil
	})
	return v, err
}

// SessionInfo is what the server knows of an account's session.
type SessionInfo struct {
	UIN       qqproto.UIN    `json:"uin"`
	Exists    bool           `json:"exists"`
	LoggedIn  bool           `json:"logged_in"`
	State     qqproto.Status `json:"state"`
	Since     time.Time      `json:"since,omitzero"`     // this session's Login
	LastSeen  time.Time      `json:"last_seen,omitzero"` // its latest request
	Logins    int            `json:"logins"`             // successful Logins ever
	LoginCode string         `json:"login_code,omitempty"`
	Queued    int            `json:"queued"` // items waiting for GetMsgEx
	Buddies   []qqproto.UIN  `json:"buddies"`
}

// Session reports on uin's session; Exists is false for an unknown number.
func (s *Server) Session(uin qqproto.UIN) SessionInfo {
	info, err := ofAccount(s, uin, (*account).sessionInfo)
	if err != nil {
		return SessionInfo{UIN: uin}
	}
	return info
}

func (a *account) sessionInfo() SessionInfo {
	info := SessionInfo{
		UIN:     a.UIN,
		Exists:  true,
		State:   a.state,
		Logins:  a.logins,
		Queued:  len(a.queue),
		Buddies: append([]qqproto.UIN{}, a.buddies...),
	}
	if a.sess != nil {
		info.LoggedIn = true
		info.Since = a.sess.started
		info.LastSeen = a.sess.lastSeen
		info.LoginCode = a.sess.lc
	}
	return info
}

// Requests returns uin's protocol requests, oldest first (the newest 256);
// nil for an unknown number.
func (s *Server) Requests(uin qqproto.UIN) []RequestRecord {
	rs, _ := ofAccount(s, uin, (*account).requests)
	return rs
}

// Stats counts what the server has done since it started.
type Stats struct {
	Accounts int   `json:"accounts"`
	Sessions int   `json:"sessions"`
	Requests int64 `json:"requests"` // protocol requests that named a valid QQ number
	Executed int64 `json:"executed"`
	Replayed int64 `json:"replayed"` // answered from the replay memory
	Errors   int64 `json:"errors"`   // HTTP 500 faults
	Garbage  int64 `json:"garbage"`  // garbage-body faults
	Drops    int64 `json:"drops"`    // dropped-connection faults
}

func (st *Stats) count(k faultKind) {
	switch k {
	case faultError:
		st.Errors++
	case faultGarbage:
		st.Garbage++
	case faultDrop:
		st.Drops++
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	var st Stats
	s.inWorld(nil, func(time.Time, []*account) error {
		st = s.stats
		st.Accounts = len(s.accounts)
		for _, a := range s.accounts {
			if a.sess != nil {
				st.Sessions++
			}
		}
		return nil
	})
	return st
}

// Bodies of the control API's POSTs other than account and faults.
type (
	sendRequest struct {
		From qqproto.UIN `json:"from"`
		To   qqproto.UIN `json:"to"`
		Text string      `json:"text"`
	}
	uinRequest struct {
		UIN qqproto.UIN `json:"uin"`
	}
	stateRequest struct {
		UIN   qqproto.UIN    `json:"uin"`
		State qqproto.Status `json:"state"`
	}
	ackRequest struct {
		From   qqproto.UIN     `json:"from"`
		To     qqproto.UIN     `json:"to"`
		CD     qqproto.AckCode `json:"cd"`
		Reason string          `json:"reason"`
	}
)

// controlMux serves the control API: JSON in and out, errors as
// {"error": …, "field": …} with status 400, or 404 for an account that
// does not exist, wherever the call names one (see errStatus).
func (s *Server) controlMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /_sim/account", postJSON(func(a Account) (any, error) {
		return map[string]any{"uin": a.UIN}, s.AddAccount(a)
	}))
	m.HandleFunc("POST /_sim/send", postJSON(func(v sendRequest) (any, error) {
		return struct{}{}, s.Send(v.From, v.To, v.Text)
	}))
	m.HandleFunc("POST /_sim/state", postJSON(func(v stateRequest) (any, error) {
		return struct{}{}, s.SetState(v.UIN, v.State)
	}))
	m.HandleFunc("POST /_sim/endsession", postJSON(func(v uinRequest) (any, error) {
		return struct{}{}, s.EndSession(v.UIN)
	}))
	m.HandleFunc("POST /_sim/ack", postJSON(func(v ackRequest) (any, error) {
		return struct{}{}, s.Ack(v.From, v.To, v.CD, v.Reason)
	}))
	m.HandleFunc("POST /_sim/faults", postJSON(func(f Faults) (any, error) {
		return f, s.SetFaults(f)
	}))
	m.HandleFunc("GET /_sim/inbox/{uin}", getByUIN(s, (*account).recentInbox))
	m.HandleFunc("GET /_sim/session/{uin}", getByUIN(s, (*account).sessionInfo))
	m.HandleFunc("GET /_sim/requests/{uin}", getByUIN(s, (*account).requests))
	m.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return m
}

// postJSON answers a POST whose body is a T with what do returns for it.
func postJSON[T any](do func(T) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v T
		if decodeJSON(w, r, &v) {
			ok, err := do(v)
			respond(w, err, ok)
		}
	}
}

// getByUIN answers a GET of …/{uin} with what get makes of that account;
// a {uin} that is not a QQ number is a 400.
func getByUIN[T any](s *Server, get func(*account) T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.PathValue("uin")
		uin, ok := qqproto.ParseUIN(raw)
		if !ok {
			writeErr(w, http.StatusBadRequest, &FieldError{"uin", fmt.Sprintf("%q is not a QQ number", raw)})
			return
		}
		v, err := ofAccount(s, uin, get)
		respond(w, err, v)
	}
}

// decodeJSON reads one JSON object into v; unknown fields and wrong types
// are 400s naming the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value in the body")
	}
	if err == nil {
		return true
	}
	var fe *FieldError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		fe = &FieldError{te.Field, fmt.Sprintf("wants a JSON %s, got %s", te.Type, te.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		fe = &FieldError{name, "unknown field"}
	default:
		fe = &FieldError{"", "body is not a JSON object: " + err.Error()}
	}
	writeErr(w, http.StatusBadRequest, fe)
	return false
}

func respond(w http.ResponseWriter, err error, ok any) {
	if err != nil {
		writeErr(w, errStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, ok)
}

// errStatus is the HTTP status of a control call's error: 404 when it
// names an account that does not exist, else 400 (the call's input is
// wrong).
func errStatus(err error) int {
	if errors.Is(err, ErrUnknownAccount) {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

func writeErr(w http.ResponseWriter, code int, err error) {
	body := map[string]string{"error": err.Error()}
	var fe *FieldError
	if errors.As(err, &fe) {
		body["field"] = fe.Field
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
