package gateway

import (
	"context"
	"encoding/xml"

	"qqxmpp/qqproto"
)

// QQ is everything the gateway asks of the legacy network for one account:
// the methods of *qqproto.Client it uses. It is the one seam where another
// network (or a test fake) could plug in.
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
	Messages(ctx context.Context) ([]qqproto.Message, error)
	SendMessage(ctx context.Context, to qqproto.UIN, text string) error
}

var _ QQ = (*qqproto.Client)(nil)

// Sender puts stanzas on the XMPP side; *xmppcomp.Component satisfies it.
// Encode takes a value encoding/xml can marshal (the structs of stanza.go).
type Sender interface {
	Send(ctx context.Context, r xml.TokenReader) error
	Encode(ctx context.Context, v any) error
}
