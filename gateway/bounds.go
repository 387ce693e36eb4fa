package gateway

// What QQ hands the gateway goes out to XMPP in stanzas that the XMPP
// server bounds (1 MiB by default in Prosody and ejabberd); a stanza over
// its bound makes the server close the component's stream, and sending it
// again at every reconnect would keep the transport offline. So nicknames
// and profile fields are cut here, where they enter, to sizes no client
// needs more of, and the cut is marked. (Message texts are split, not cut:
// toxmpp.go.)

import (
	"context"
	"strings"
	"unicode/utf8"

	"qqxmpp/qqproto"
)

const (
	// maxNickBytes bounds a buddy's nickname: it goes into presences,
	// roster items and vCards. QQ's own clients allow 12 characters.
	maxNickBytes = 256
	// maxFieldBytes bounds each profile field but the profile text.
	maxFieldBytes = 1024
	// maxAboutBytes bounds the profile text (PR). With every other field
	// at its bound the vCard stays under 64 KiB.
	maxAboutBytes = 16 << 10
)

// cutMark ends a value the gateway cut.
const cutMark = "…"

// boundedQQ is the QQ seam with nicknames and profile fields cut to size.
type boundedQQ struct{ QQ }

func (q boundedQQ) OnlineBuddies(ctx context.Context) ([]qqproto.Buddy, error) {
	bs, err := q.QQ.OnlineBuddies(ctx)
	for i := range bs {
		bs[i].Nick = keep(cut(bs[i].Nick, maxNickBytes))
	}
	return bs, err
}

func (q boundedQQ) Profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	p, err := q.QQ.Profile(ctx, uin)
	p.Nick = keep(cut(p.Nick, maxNickBytes))
	for _, f := range []*string{&p.RealName, &p.Email, &p.Homepage, &p.Job, &p.Phone, &p.Mobile,
		&p.Address, &p.Postcode, &p.Province, &p.City, &p.Country, &p.School} {
		*f = keep(cut(*f, maxFieldBytes))
	}
	p.About = keep(cut(p.About, maxAboutBytes))
	return p, err
}

// keep copies a value the session keeps: cut from a whole reply, it would
// keep all of that reply in memory for as long as the session does (the
// heap profile with 1,000 users online put 2 kB per user there).
func keep(s string) string { return strings.Clone(s) }

// cut returns s if it has at most max bytes, else its longest prefix of
// whole characters that, with cutMark, has at most max.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len(cutMark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + cutMark
}
