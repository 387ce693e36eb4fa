package qqsim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"qqxmpp/qqproto"
)

// Faults make the server misbehave, for proving that a client loses and
// duplicates nothing. Each rate is a probability per request; together
// they may not exceed 1.
//
//   - ErrorRate: HTTP 500, the command NOT executed.
//   - GarbageRate: the command executed and its reply remembered, but the
//     body sent is unparseable (an HTML error page, or the reply cut off
//     before RES).
//   - DropRate: the command executed and its reply remembered, then the
//     connection closed without a reply.
//
// A client that retries with the same SEQ gets the remembered reply, so
// nothing runs twice. Which request meets which fault is a function of
// Seed, the request's UIN, CMD and SEQ, and how many times that same
// request was seen: the same client run against the same seed meets the
// same faults, however other sessions' requests interleave.
type Faults struct {
	LatencyMS   float64 `json:"latency_ms"` // added to every request
	ErrorRate   float64 `json:"error_rate"`
	GarbageRate float64 `json:"garbage_rate"`
	DropRate    float64 `json:"drop_rate"`
	Seed        int64   `json:"seed"`
}

func (f Faults) check() error {
	if f.LatencyMS < 0 || f.LatencyMS > 60000 {
		return &FieldError{"latency_ms", fmt.Sprintf("is %v; must be between 0 and 60000", f.LatencyMS)}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_rate", f.ErrorRate}, {"garbage_rate", f.GarbageRate}, {"drop_rate", f.DropRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return &FieldError{r.name, fmt.Sprintf("is %v; must be between 0 and 1", r.v)}
		}
	}
	if sum := f.ErrorRate + f.GarbageRate + f.DropRate; sum > 1 {
		return &FieldError{"drop_rate", fmt.Sprintf("error_rate+garbage_rate+drop_rate is %v; must not exceed 1", sum)}
	}
	return nil
}

func (f Faults) active() bool {
	return f.LatencyMS > 0 || f.ErrorRate > 0 || f.GarbageRate > 0 || f.DropRate > 0
}

// SetFaults replaces the fault settings and starts counting attempts
// afresh. The zero Faults turns them all off.
func (s *Server) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.faults = f
	s.attempts = make(map[string]int)
	s.attemptQ = nil
	return nil
}

type faultKind int

const (
	faultNone faultKind = iota
	faultError
	faultGarbage
	faultDrop
)

func (k faultKind) String() string {
	switch k {
	case faultError:
		return "error"
	case faultGarbage:
		return "garbage"
	case faultDrop:
		return "drop"
	}
	return ""
}

type faultDraw struct {
	kind    faultKind
	latency time.Duration
	h       uint64
}

type attempt struct {
	key string
	at  time.Time
}

// faultKey names a request for fault drawing: the same request sent again
// (a retry) has the same key.
func faultKey(req qqproto.Fields) string {
	return strings.TrimSpace(req.Get("UIN")) + "|" + strings.ToUpper(req.Get("CMD")) + "|" + strings.TrimSpace(req.Get("SEQ"))
}

// drawFault decides the fault req meets. The key is built only when faults
// are on: without them this runs for every request at no cost.
func (s *Server) drawFault(req qqproto.Fields) faultDraw {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	f := s.faults
	if !f.active() {
		return faultDraw{}
	}
	key := faultKey(req)
	now := s.opts.Now()
	n := s.attempts[key]
	s.attempts[key] = n + 1
	if n == 0 {
		s.attemptQ = append(s.attemptQ, attempt{key, now})
	}
	// Forget attempts older than the replay window: a request that old
	// cannot be retried into the memory anyway.
	i := 0
	for i < len(s.attemptQ) && now.Sub(s.attemptQ[i].at) >= s.opts.ReplayWindow {
		delete(s.attempts, s.attemptQ[i].key)
		i++
	}
	s.attemptQ = s.attemptQ[i:]

	h := mix(f.Seed, key, n)
	u := float64(h>>11) / (1 << 53)
	d := faultDraw{latency: time.Duration(f.LatencyMS * float64(time.Millisecond)), h: h}
	switch {
	case u < f.ErrorRate:
		d.kind = faultError
	case u < f.ErrorRate+f.GarbageRate:
		d.kind = faultGarbage
	case u < f.ErrorRate+f.GarbageRate+f.DropRate:
		d.kind = faultDrop
	}
	return d
}

// mix hashes (seed, key, attempt) to 64 well-spread bits.
func mix(seed int64, key string, n int) uint64 {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(n))
	h.Write(b[:])
	h.Write([]byte(key))
	x := h.Sum64()
	// splitmix64 finaliser: fnv's low bits are weak for short inputs.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// garbage is what a GarbageRate fault sends instead of reply: either a
// proxy's HTML error page or the reply cut off before its RES field.
// Neither parses as a QQ line.
func garbage(reply string, h uint64) string {
	if h&1 == 0 {
		return "<html><body><h1>502 Bad Gateway</h1></body></html>"
	}
	if i := strings.Index(reply, "&RES="); i >= 0 {
		return reply[:i+3] // "…&UIN=10001&RE"
	}
	return "<html><body>truncated</body></html>"
}
