package gateway

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strconv"
	"sync"

	"qqxmpp/qqproto"
)

// AvatarType is the MIME type of every avatar the gateway makes.
const AvatarType = "image/png"

// avatarSize is the side of an avatar in pixels; XEP-0153 recommends 64 to 96.
const avatarSize = 64

// maxAvatarPicture is the largest picture number drawn as itself. QQ's
// pictures go to a few hundred; anything past this is not a real face and
// gets the "?" avatar rather than an unreadable row of digits.
const maxAvatarPicture = 9999

// Avatar is a buddy's picture: PNG bytes and their XEP-0153 hash.
type Avatar struct {
	PNG  []byte
	Hash string // lowercase hex SHA-1 of PNG, as vcard-temp:x:update carries it
}

// Avatars makes and remembers one avatar per picture number. QQ has no
// avatar images on the wire, only a face number (FC); the gateway draws a
// stand-in from it: a coloured disc with the picture number (FC/3+1) the
// official clients showed. Faces with the same picture number (FC%3 were
// variants of one picture) share an avatar.
//
// The zero value is ready to use and safe for concurrent use.
type Avatars struct {
	mu    sync.Mutex
	cache map[int]Avatar
}

// ForFace returns the avatar of a face number, drawing it once.
func (a *Avatars) ForFace(face int) (Avatar, error) {
	return a.forPicture(avatarPicture(face))
}

// forPicture returns the avatar of a picture number, drawing it once.
func (a *Avatars) forPicture(pic int) (Avatar, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if av, ok := a.cache[pic]; ok {
		return av, nil
	}
	data, err := renderAvatar(pic)
	if err != nil {
		return Avatar{}, err
	}
	sum := sha1.Sum(data)
	av := Avatar{PNG: data, Hash: hex.EncodeToString(sum[:])}
	if a.cache == nil {
		a.cache = make(map[int]Avatar)
	}
	a.cache[pic] = av
	return av, nil
}

// avatarPicture is the picture number of a face, or 0 for a face no client
// ever had (negative, or past maxAvatarPicture).
func avatarPicture(face int) int {
	if face < 0 || face > 3*maxAvatarPicture-1 {
		return 0
	}
	return qqproto.FaceImage(face)
}

func renderAvatar(pic int) ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, avatarSize, avatarSize))
	bg, disc := avatarColours(pic)
	draw.Draw(img, img.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)

	// The disc, with a one-pixel ring of the background blended in for a
	// softer edge.
	c := float64(avatarSize-1) / 2
	r := float64(avatarSize)/2 - 3
	for y := 0; y < avatarSize; y++ {
		for x := 0; x < avatarSize; x++ {
			dx, dy := float64(x)-c, float64(y)-c
			d2 := dx*dx + dy*dy
			var px color.NRGBA
			switch {
			case d2 <= (r-1)*(r-1):
				px = disc
			case d2 <= r*r:
				px = mix(bg, disc)
			default:
				continue
			}
			i := img.PixOffset(x, y)
			copy(img.Pix[i:i+4], []uint8{px.R, px.G, px.B, px.A})
		}
	}

	label := "?"
	if pic > 0 {
		label = strconv.Itoa(pic)
	}
	drawLabel(img, label, color.NRGBA{0x20, 0x20, 0x28, 0xff})

	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("avatar for picture %d: %w", pic, err)
	}
	return buf.Bytes(), nil
}

// avatarColours picks a background and a lighter disc colour for a picture
// number. Hues step by the golden angle so neighbouring numbers look apart.
func avatarColours(pic int) (bg, disc color.NRGBA) {
	if pic == 0 {
		return color.NRGBA{0x90, 0x90, 0x90, 0xff}, color.NRGBA{0xd8, 0xd8, 0xd8, 0xff}
	}
	hue := float64((pic*137)%360) + float64(pic%7)*0.5 // degrees
	return hsv(hue, 0.60, 0.80), hsv(hue, 0.20, 1.00)
}

func mix(a, b color.NRGBA) color.NRGBA {
	return color.NRGBA{uint8((int(a.R) + int(b.R)) / 2), uint8((int(a.G) + int(b.G)) / 2), uint8((int(a.B) + int(b.B)) / 2), 0xff}
}

// hsv converts hue (degrees), saturation and value (0..1) to an opaque colour.
func hsv(h, s, v float64) color.NRGBA {
	for h >= 360 {
		h -= 360
	}
	c := v * s
	hp := h / 60
	x := c * (1 - abs(mod2(hp)-1))
	var r, g, b float64
	switch {
	case hp < 1:
		r, g, b = c, x, 0
	case hp < 2:
		r, g, b = x, c, 0
	case hp < 3:
		r, g, b = 0, c, x
	case hp < 4:
		r, g, b = 0, x, c
	case hp < 5:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	m := v - c
	to8 := func(f float64) uint8 { return uint8((f+m)*255 + 0.5) }
	return color.NRGBA{to8(r), to8(g), to8(b), 0xff}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// mod2 is f modulo 2 for f >= 0.
func mod2(f float64) float64 { return f - 2*float64(int(f/2)) }

// glyphs is a 3×5 pixel font for the digits 0 to 9 and, last, "?": each
// row is three bits, the most significant on the left.
var glyphs = [11][5]uint8{
	{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
	{7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
	{7, 1, 3, 0, 2},
}

func glyph(ch rune) [5]uint8 {
	if ch >= '0' && ch <= '9' {
		return glyphs[ch-'0']
	}
	return glyphs[10]
}

// drawLabel draws text centred in img, as large as fits inside the disc.
func drawLabel(img draw.Image, text string, ink color.Color) {
	n := len(text)
	// Each glyph is 3 units wide with 1 unit between glyphs; the label must
	// fit in the middle 60% of the avatar.
	unitsW := 4*n - 1
	scale := (avatarSize * 6 / 10) / unitsW
	if s := (avatarSize * 4 / 10) / 5; scale > s {
		scale = s
	}
	if scale < 1 {
		scale = 1
	}
	x0 := (avatarSize - unitsW*scale) / 2
	y0 := (avatarSize - 5*scale) / 2
	u := image.NewUniform(ink)
	for i, ch := range text {
		g := glyph(ch)
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row]&(4>>col) == 0 {
					continue
				}
				x := x0 + (4*i+col)*scale
				y := y0 + row*scale
				draw.Draw(img, image.Rect(x, y, x+scale, y+scale), u, image.Point{}, draw.Src)
			}
		}
	}
}
