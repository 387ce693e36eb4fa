package qqsim

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
)

// Options tune a Server. Zero values take the defaults shown.
type Options struct {
	IdleTimeout  time.Duration // LI: silence after which a session ends; 300s
	PollInterval time.Duration // HI: the poll interval Login hands out; 60s
	ReplayWindow time.Duration // how long replies are remembered by (CMD, SEQ); 5m
	MaxMessages  int           // GetMsgEx items per reply; 20
	Now          func() time.Time
	Logger       logrus.FieldLogger // nil: no logging
}

// Limits on what the server remembers per account, so that a long load run
// stays bounded.
const (
	inboxLimit   = 10000 // Inbox keeps the newest this many items
	requestLimit = 256   // Requests keeps the newest this many records
	maxBody      = 64 << 10
)

// RES values this emulator answers besides qqproto's ResOK, ResInvalidUIN
// and ResNotLoggedIn.
const (
	// ResBadRequest: an unknown command, or a field that is missing or not
	// what it should be (TN=abc, ST=15, an Ack_AddToList CD of 7).
	ResBadRequest = 1
	// ResRefused: Ack_AddToList CD=2 to an account that accepts nobody (auth 3).
	ResRefused = 3
)

// Server is the emulated QQ HTTP server: the protocol at "/" (POST only),
// the control API under "/_sim/". It is safe for concurrent use and holds
// no goroutine per session: idle sessions are ended lazily, in deadline
// order, whenever the server is next used.
type Server struct {
	opts    Options
	log     logrus.FieldLogger
	control *http.ServeMux

	mu       sync.Mutex
	accounts map[qqproto.UIN]*account
	watchers map[qqproto.UIN]map[qqproto.UIN]struct{} // buddy → accounts that list it
	expiry   expiryHeap
	gen      uint64 // session counter
	stats    Stats

	fmu      sync.Mutex
	faults   Faults
	attempts map[string]int
	attemptQ []attempt
}

// New returns an empty world; add accounts with AddAccount.
func New(opts Options) *Server {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 300 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 60 * time.Second
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = 5 * time.Minute
	}
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	s := &Server{
		opts:     opts,
		log:      log,
		accounts: make(map[qqproto.UIN]*account),
		watchers: make(map[qqproto.UIN]map[qqproto.UIN]struct{}),
		attempts: make(map[string]int),
	}
	s.control = s.controlMux()
	return s
}

// ServeHTTP answers one protocol request, or a control API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.control.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the QQ HTTP protocol takes POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req, err := parseRequest(r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, "not a QQ request line: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.Get("CMD") == "" {
		http.Error(w, "not a QQ request line: no CMD field", http.StatusBadRequest)
		return
	}

	f := s.drawFault(req)
	if f.latency > 0 {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	reply := s.exec(req, f.kind, localAddr(r))
	switch f.kind {
	case faultError:
		http.Error(w, "simulated server error", http.StatusInternalServerError)
		return
	case faultDrop:
		dropConnection(w, s.log)
		return
	case faultGarbage:
		reply = garbage(reply, f.h)
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	io.WriteString(w, reply)
}

func parseRequest(contentType string, body []byte) (qqproto.Fields, error) {
	line := string(body) // Parse drops a trailing line break; spaces are data
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/x-www-form-urlencoded" {
		return qqproto.ParseForm(line)
	}
	return qqproto.Parse(line)
}

// localAddr is the server address a request came to: which of several
// addresses of one listener (127.0.0.1, 127.0.0.2, ...) a client used.
func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}

// dropConnection closes the connection without a reply: the "lost
// response" a client must survive by retrying with the same SEQ.
func dropConnection(w http.ResponseWriter, log logrus.FieldLogger) {
	hj, ok := w.(http.Hijacker)
	if ok {
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
			return
		}
		log.WithError(err).Warn("qqsim: cannot hijack connection to drop it")
	}
	// No connection to close (HTTP/2, a ResponseRecorder): fail the
	// exchange as visibly as we can instead.
	http.Error(w, "simulated dropped connection", http.StatusBadGateway)
}

// replyEcho is how a reply writes each command's name: the seed shows these
// upper-cased and the others as the client sent them.
var replyEcho = map[string]string{
	"LIST": "LIST", "QUERY_STAT": "QUERY_STAT", "GETINFO": "GETINFO", "GETMSGEX": "GETMSGEX", "LOGOUT": "LOGOUT",
}

// trailingAmp lists the replies the seed shows ending in '&'.
var trailingAmp = map[string]bool{
	"QUERY_STAT": true, "GETMSGEX": true, "ACK_ADDTOLIST": true, "DELFROMLIST": true, "CHANGE_STAT": true,
}

// exec runs one parsed request and returns the reply line. With an
// error fault nothing is executed, only recorded; with the other faults
// the command runs and its reply is remembered before it is lost.
func (s *Server) exec(req qqproto.Fields, fault faultKind, via string) string {
	cmd := req.Get("CMD")
	up := strings.ToUpper(cmd)
	echo := cmd
	if e, ok := replyEcho[up]; ok {
		echo = e
	}
	reply := func(res int, body qqproto.Fields) string {
		f := make(qqproto.Fields, 0, 5+len(body))
		f.Set("VER", req.Get("VER"))
		f.Set("CMD", echo)
		f.Set("SEQ", req.Get("SEQ"))
		f.Set("UIN", req.Get("UIN"))
		f.SetInt("RES", int64(res))
		f = append(f, body...)
		line := f.String()
		if trailingAmp[up] {
			line += "&"
		}
		return line
	}

	uin, ok := qqproto.ParseUIN(strings.TrimSpace(req.Get("UIN")))
	if !ok {
		return reply(qqproto.ResInvalidUIN, nil)
	}
	seq := strings.TrimSpace(req.Get("SEQ"))
	digest := requestDigest(req)

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	s.expireLocked(now)
	s.stats.Requests++
	s.stats.count(fault)
	a := s.accounts[uin]
	if a == nil {
		return reply(qqproto.ResInvalidUIN, nil)
	}
	if fault == faultError {
		a.note(RequestRecord{Via: via, Cmd: up, Seq: seq, Res: -1, Fault: fault.String(), At: now})
		return ""
	}
	if a.sess != nil {
		a.sess.lastSeen = now
	}
	if seq != "" {
		if e, ok := a.replay[replayKey{up, seq}]; ok && e.digest == digest && now.Sub(e.at) < s.opts.ReplayWindow {
			s.stats.Replayed++
			a.note(RequestRecord{Via: via, Cmd: up, Seq: seq, Res: e.res, Replayed: true, Fault: fault.String(), At: now})
			if s.debug() {
				s.log.WithFields(logrus.Fields{"uin": uin, "cmd": up, "seq": seq}).Debug("qqsim: replayed from memory")
			}
			return e.reply
		} else if ok && e.digest != digest {
			s.log.WithFields(logrus.Fields{"uin": uin, "cmd": up, "seq": seq}).
				Warn("qqsim: SEQ reused for a different request; executing it as new")
		}
	}

	c := &call{s: s, a: a, req: req, now: now}
	var res int
	if h, ok := commands[up]; !ok {
		res = ResBadRequest
	} else if up != "LOGIN" && a.sess == nil {
		res = qqproto.ResNotLoggedIn
	} else {
		res = h(c)
	}
	line := reply(res, c.out)
	s.stats.Executed++
	if seq != "" {
		a.remember(replayKey{up, seq}, replayEntry{reply: line, digest: digest, res: res, at: now}, s.opts.ReplayWindow)
	}
	a.note(RequestRecord{Via: via, Cmd: up, Seq: seq, Res: res, Executed: true, Fault: fault.String(), At: now})
	if s.debug() {
		s.log.WithFields(logrus.Fields{"uin": uin, "cmd": up, "seq": seq, "res": res}).Debug("qqsim: executed")
	}
	return line
}

// debug reports whether debug lines would be written: building their
// fields costs more than the rest of a request.
func (s *Server) debug() bool {
	if l, ok := s.log.(interface{ IsLevelEnabled(logrus.Level) bool }); ok {
		return l.IsLevelEnabled(logrus.DebugLevel)
	}
	return true
}

// requestDigest fingerprints a request's decoded fields, so that only a
// true repeat (same fields, however encoded) is answered from memory.
// It is FNV-1a written out, since hash/fnv allocates for every string
// written to it and this runs for every request.
func requestDigest(req qqproto.Fields) uint64 {
	h := uint64(fnvOffset64)
	for _, f := range req {
		h = fnvString(h, f.Key)
		h = fnvByte(h, 0)
		h = fnvString(h, qqproto.Unescape(f.Raw))
		h = fnvByte(h, 1)
	}
	return h
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime64 }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}

type replayKey struct{ cmd, seq string }

type replayEntry struct {
	reply  string
	digest uint64
	res    int
	at     time.Time
}

type replayed struct {
	key replayKey
	at  time.Time
}
