package gateway

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"image/png"
	"sync"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
)

func TestAvatarIsDeterministicPNG(t *testing.T) {
	a, err := renderFace(270)
	if err != nil {
		t.Fatal(err)
	}
	b, err := renderFace(270)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings of face 270 differ")
	}
	img, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatalf("avatar is not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got.X != avatarSize || got.Y != avatarSize {
		t.Errorf("avatar is %v, want %dx%d", got, avatarSize, avatarSize)
	}
	// The disc is drawn: centre and corner have different colours.
	if img.At(avatarSize/2, 8) == img.At(0, 0) {
		t.Error("avatar looks uniform: no disc drawn")
	}
}

func TestAvatarDistinctPictures(t *testing.T) {
	var avs Avatars
	seen := map[string]int{}
	for pic := 1; pic <= 100; pic++ {
		face := (pic - 1) * 3
		av, err := avs.ForFace(face)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[av.Hash]; dup {
			t.Fatalf("faces %d and %d have the same avatar", face, other)
		}
		seen[av.Hash] = face
	}
	// FC%3 are variants of one picture: the same avatar.
	x, _ := avs.ForFace(270)
	y, _ := avs.ForFace(272)
	if x.Hash != y.Hash {
		t.Error("faces 270 and 272 (both picture 91) have different avatars")
	}
}

func TestAvatarHashIsSHA1OfPNG(t *testing.T) {
	var avs Avatars
	av, err := avs.ForFace(0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(av.PNG)
	if av.Hash != hex.EncodeToString(sum[:]) || len(av.Hash) != 40 {
		t.Errorf("hash %q is not the hex SHA-1 of the PNG", av.Hash)
	}
	raw, _ := renderFace(0)
	if !bytes.Equal(raw, av.PNG) {
		t.Error("cached avatar differs from a fresh rendering")
	}
}

func TestAvatarOddFaces(t *testing.T) {
	var avs Avatars
	unknown, err := avs.ForFace(-1)
	if err != nil {
		t.Fatal(err)
	}
	for _, face := range []int{-1 << 62, -3, 3 * maxAvatarPicture, 1 << 62} {
		av, err := avs.ForFace(face)
		if err != nil {
			t.Fatalf("face %d: %v", face, err)
		}
		if av.Hash != unknown.Hash {
			t.Errorf("face %d: want the unknown-face avatar", face)
		}
		if _, err := png.Decode(bytes.NewReader(av.PNG)); err != nil {
			t.Errorf("face %d: %v", face, err)
		}
	}
	big, _ := avs.ForFace(3*maxAvatarPicture - 1)
	if big.Hash == unknown.Hash {
		t.Error("the largest real picture number got the unknown-face avatar")
	}
}

func TestAvatarsConcurrent(t *testing.T) {
	var avs Avatars
	var wg sync.WaitGroup
	hashes := make([]string, 8)
	for i := range hashes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			av, err := avs.ForFace(30)
			if err != nil {
				t.Error(err)
				return
			}
			hashes[i] = av.Hash
		}()
	}
	wg.Wait()
	for _, h := range hashes {
		if h != hashes[0] {
			t.Fatal("concurrent lookups of one face gave different avatars")
		}
	}
}

func BenchmarkAvatarRender(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := renderFace(i % 600); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAvatarCached(b *testing.B) {
	var avs Avatars
	for i := 0; i < b.N; i++ {
		if _, err := avs.ForFace(i % 600); err != nil {
			b.Fatal(err)
		}
	}
}

// A buddy who picks another picture while online shows the user the new
// avatar hash (XEP-0153): clients fetch the vCard only when it changes.
func TestNewFaceOfOnlineBuddyIsAnnounced(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.g.mu.Lock()
	s := h.g.sessions[aliceBare]
	h.g.mu.Unlock()
	const face = 30
	done := make(chan struct{})
	h.g.sched.submit(s.task, func(context.Context) {
		s.link.qq = faceSetter(s.link.qq, 20001, face)
		close(done)
	})
	<-done
	want, err := h.g.emit.avatars.ForFace(face)
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("Bob's presence with the new avatar hash", func(st xmppcomp.Stanza) bool {
		if st.Name != "presence" || st.From.Bare().String() != buddyAddr(20001) || st.Type != "" {
			return false
		}
		var p struct {
			X *vcardUpdate `xml:"x"`
		}
		return st.Decode(&p) == nil && p.X != nil && p.X.Photo == want.Hash
	})
}

// buddyEdit changes one buddy's entry in the online list, as QQ would
// report a new face or nick.
type buddyEdit struct {
	QQ
	uin  qqproto.UIN
	edit func(*qqproto.Buddy)
}

func (f *buddyEdit) OnlineBuddies(ctx context.Context) ([]qqproto.Buddy, error) {
	bs, err := f.QQ.OnlineBuddies(ctx)
	for i := range bs {
		if bs[i].UIN == f.uin {
			f.edit(&bs[i])
		}
	}
	return bs, err
}

// faceSetter reports uin's face as face.
func faceSetter(qq QQ, uin qqproto.UIN, face int) QQ {
	return &buddyEdit{QQ: qq, uin: uin, edit: func(b *qqproto.Buddy) { b.Face = face }}
}

// nickSetter reports uin's nick as nick.
func nickSetter(qq QQ, uin qqproto.UIN, nick string) QQ {
	return &buddyEdit{QQ: qq, uin: uin, edit: func(b *qqproto.Buddy) { b.Nick = nick }}
}

// renderFace draws the avatar of a face number.
func renderFace(face int) ([]byte, error) { return renderAvatar(avatarPicture(face)) }
