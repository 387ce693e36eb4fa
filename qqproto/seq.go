package qqproto

import (
	"sync/atomic"
	"time"
)

// seqMask keeps SEQ within 31 bits, so that servers storing it in a 32-bit
// int read it unchanged.
const seqMask = 1<<31 - 1

// Seqs hands out SEQs. It is safe for concurrent use. A Client has its
// own; a caller that chooses the SEQ of a request before sending it (to
// store it with the request, see Client.SendMessageSeq) uses one Seqs for
// every request of that command it sends, so that no two of them share a
// SEQ within the server's memory of replies.
type Seqs struct{ n atomic.Int64 }

// NewSeqs returns a Seqs seeded from the clock in microseconds: that keeps
// a restarted process clear of the SEQs its predecessor used within the
// server's memory of replies (5 minutes), since it would have had to send
// more than one request per microsecond to catch up with the clock. The
// 31-bit SEQ wraps every 36 minutes, well outside that memory.
func NewSeqs() *Seqs {
	s := &Seqs{}
	s.n.Store(time.Now().UnixMicro() & seqMask)
	return s
}

// Next returns a fresh SEQ.
func (s *Seqs) Next() int64 { return s.Reserve(1) }

// Reserve returns the first of n consecutive fresh SEQs (first, first+1,
// …, first+n-1), all within 1..2³¹-1: for the parts of one long message.
func (s *Seqs) Reserve(n int) int64 {
	if n < 1 {
		n = 1
	}
	for {
		old := s.n.Load()
		first := old + 1
		// 0 is what ReadHeader makes of an empty SEQ, so never send it;
		// a block never wraps past 2³¹-1.
		if first > seqMask || first+int64(n)-1 > seqMask {
			first = 1
		}
		if s.n.CompareAndSwap(old, first+int64(n)-1) {
			return first
		}
	}
}
