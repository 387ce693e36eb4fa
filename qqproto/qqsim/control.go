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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[a.UIN] != nil {
		return fmt.Errorf("account %d: %w", a.UIN, &FieldError{"uin", "already exists"})
	}
	now := s.opts.Now()
	s.expireLocked(now)
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
}

func (s *Server) lookup(uin qqproto.UIN, field string) (*account, error) {
	a := s.accounts[uin]
	if a == nil {
		return nil, &FieldError{field, fmt.Sprintf("%d: %v", uin, ErrUnknownAccount)}
	}
	return a, nil
}

// Send makes account from send text to account to, as its CLTMSG would.
func (s *Server) Send(from, to qqproto.UIN, text string) error {
	if text == "" {
		return &FieldError{"text", "must not be empty"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.expireLocked(now)
	fa, err := s.lookup(from, "from")
	if err != nil {
		return err
	}
	ta, err := s.lookup(to, "to")
	if err != nil {
		return err
	}
	s.deliver(ta, InboxItem{Type: qqproto.MsgBuddy, From: fa.UIN, Text: text, At: now}, true)
	return nil
}

// SetState changes an account's state, as its Change_Stat would.
func (s *Server) SetState(uin qqproto.UIN, st qqproto.Status) error {
	if !st.Valid() {
		return &FieldError{"state", fmt.Sprintf("is %d; must be 10, 20, 30 or 40", st)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.expireLocked(now)
	a, err := s.lookup(uin, "uin")
	if err != nil {
		return err
	}
	s.setState(a, st, now)
	return nil
}

// Ack makes account from answer about account to, as its Ack_AddToList
// would: AckRequest asks to add them, AckApprove and AckReject answer
// their request.
func (s *Server) Ack(from, to qqproto.UIN, cd qqproto.AckCode, reason string) error {
	if cd < qqproto.AckApprove || cd > qqproto.AckRequest {
		return &FieldError{"cd", fmt.Sprintf("is %d; must be 0 (approve), 1 (reject) or 2 (request)", cd)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.expireLocked(now)
	fa, err := s.lookup(from, "from")
	if err != nil {
		return err
	}
	ta, err := s.lookup(to, "to")
	if err != nil {
		return err
	}
	if fa == ta {
		return &FieldError{"to", "an account cannot add itself"}
	}
	if s.ack(fa, ta, cd, reason, now) == ResRefused {
		return &FieldError{"to", fmt.Sprintf("%d accepts no buddy requests (auth 3)", to)}
	}
	return nil
}

// Inbox returns everything delivered to uin, oldest first: messages,
// notices and add requests (at most the newest 10000).
func (s *Server) Inbox(uin qqproto.UIN) []InboxItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.opts.Now())
	a := s.accounts[uin]
	if a == nil {
		return nil
	}
	in := a.inbox
	if len(in) > inboxLimit {
		in = in[len(in)-inboxLimit:]
	}
	return append([]InboxItem(nil), in...)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.opts.Now())
	info := SessionInfo{UIN: uin}
	a := s.accounts[uin]
	if a == nil {
		return info
	}
	info.Exists = true
	info.State = a.state
	info.Logins = a.logins
	info.Queued = len(a.queue)
	info.Buddies = append([]qqproto.UIN{}, a.buddies...)
	if a.sess != nil {
		info.LoggedIn = true
		info.Since = a.sess.started
		info.LastSeen = a.sess.lastSeen
		info.LoginCode = a.sess.lc
	}
	return info
}

// Requests returns uin's protocol requests, oldest first (the newest 256).
func (s *Server) Requests(uin qqproto.UIN) []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[uin]; a != nil {
		return a.requests()
	}
	return nil
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.opts.Now())
	st := s.stats
	st.Accounts = len(s.accounts)
	for _, a := range s.accounts {
		if a.sess != nil {
			st.Sessions++
		}
	}
	return st
}

// controlMux serves the control API: JSON in and out, errors as
// {"error": …, "field": …} with status 400 (404 for an unknown account).
func (s *Server) controlMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /_sim/account", func(w http.ResponseWriter, r *http.Request) {
		var a Account
		if decodeJSON(w, r, &a) {
			respond(w, s.AddAccount(a), map[string]any{"uin": a.UIN})
		}
	})
	m.HandleFunc("POST /_sim/send", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			From qqproto.UIN `json:"from"`
			To   qqproto.UIN `json:"to"`
			Text string      `json:"text"`
		}
		if decodeJSON(w, r, &v) {
			respond(w, s.Send(v.From, v.To, v.Text), map[string]any{})
		}
	})
	m.HandleFunc("POST /_sim/state", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			UIN   qqproto.UIN    `json:"uin"`
			State qqproto.Status `json:"state"`
		}
		if decodeJSON(w, r, &v) {
			respond(w, s.SetState(v.UIN, v.State), map[string]any{})
		}
	})
	m.HandleFunc("POST /_sim/ack", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			From   qqproto.UIN     `json:"from"`
			To     qqproto.UIN     `json:"to"`
			CD     qqproto.AckCode `json:"cd"`
			Reason string          `json:"reason"`
		}
		if decodeJSON(w, r, &v) {
			respond(w, s.Ack(v.From, v.To, v.CD, v.Reason), map[string]any{})
		}
	})
	m.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if decodeJSON(w, r, &f) {
			respond(w, s.SetFaults(f), f)
		}
	})
	m.HandleFunc("GET /_sim/inbox/{uin}", func(w http.ResponseWriter, r *http.Request) {
		if uin, ok := s.pathAccount(w, r); ok {
			writeJSON(w, http.StatusOK, s.Inbox(uin))
		}
	})
	m.HandleFunc("GET /_sim/session/{uin}", func(w http.ResponseWriter, r *http.Request) {
		if uin, ok := s.pathAccount(w, r); ok {
			writeJSON(w, http.StatusOK, s.Session(uin))
		}
	})
	m.HandleFunc("GET /_sim/requests/{uin}", func(w http.ResponseWriter, r *http.Request) {
		if uin, ok := s.pathAccount(w, r); ok {
			writeJSON(w, http.StatusOK, s.Requests(uin))
		}
	})
	m.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return m
}

// pathAccount reads the {uin} of the path: 400 if it is not a QQ number,
// 404 if no such account exists.
func (s *Server) pathAccount(w http.ResponseWriter, r *http.Request) (qqproto.UIN, bool) {
	raw := r.PathValue("uin")
	uin, ok := qqproto.ParseUIN(raw)
	if !ok {
		writeErr(w, http.StatusBadRequest, &FieldError{"uin", fmt.Sprintf("%q is not a QQ number", raw)})
		return 0, false
	}
	s.mu.Lock()
	exists := s.accounts[uin] != nil
	s.mu.Unlock()
	if !exists {
		writeErr(w, http.StatusNotFound, &FieldError{"uin", fmt.Sprintf("%d: %v", uin, ErrUnknownAccount)})
		return 0, false
	}
	return uin, true
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
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, ok)
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
