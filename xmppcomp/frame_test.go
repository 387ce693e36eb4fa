package xmppcomp

import (
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// split frames text as framedConn reads it, fed in chunks drawn by size.
func split(text string, size func() int) []string {
	var got []string
	var s frameScanner
	var cur strings.Builder
	b := []byte(text)
	for len(b) > 0 {
		n := min(size(), len(b))
		k, found, next := s.boundary(b[:n])
		cur.Write(b[:k])
		b, s = b[k:], next
		if found {
			got = append(got, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		got = append(got, cur.String())
	}
	return got
}

var frameCases = []struct {
	name string
	in   []string // the frames a reader should get, in order
}{
	{"header and stanzas", []string{
		`<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='qq.localhost' id='x1'>`,
		`<handshake/>`,
		`<message from='a@localhost/r' to='10001@qq.localhost' type='chat'><body>a &gt; b, 1/2 &lt;3</body></message>`,
		` <presence from="a@localhost/r" to="qq.localhost"><x xmlns='vcard-temp:x:update'><photo/></x></presence>`,
		"\n<iq type='get' id='p>1' to='qq.localhost' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
		`<message to='x@qq.localhost' title="it's/>"><body><![CDATA[</message> <b/> ]]]></body><!-- </message> ---></message>`,
		`</stream:stream>`,
	}},
}

func TestFrameScannerEndsEachReadAtAStanza(t *testing.T) {
	for _, c := range frameCases {
		text := strings.Join(c.in, "")
		for _, chunk := range []int{1, 2, 3, 7, 64, len(text)} {
			got := split(text, func() int { return chunk })
			if strings.Join(got, "|") != strings.Join(c.in, "|") {
				t.Errorf("%s, chunks of %d:\n got %q\nwant %q", c.name, chunk, got, c.in)
			}
		}
	}
}

// The frames of a burst written at once come one per read, and none
// leaves the kernel's socket before the reader asks for more than the
// burst: until then a crash leaves them all there, unread.
func TestFramedConnLeavesTheRestInTheSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	want := frameCases[0].in
	burst := strings.Join(want, "")
	if _, err := server.Write([]byte(burst)); err != nil {
		t.Fatal(err)
	}
	fc := framed(client, 1<<20)
	fc.SetReadDeadline(time.Now().Add(5 * time.Second))
	time.Sleep(50 * time.Millisecond) // the whole burst has arrived
	buf := make([]byte, 4096)
	for i, w := range want {
		n, err := fc.Read(buf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if got := string(buf[:n]); got != w {
			t.Fatalf("read %d = %q, want %q", i, got, w)
		}
		if left := unread(t, client); left != len(burst) {
			t.Fatalf("after read %d the socket holds %d bytes, want all %d", i, left, len(burst))
		}
		if more := fc.(*framedConn).buffered(); more != (i < len(want)-1) {
			t.Fatalf("after read %d buffered() = %v", i, more)
		}
	}
	// Asking for more takes the burst out of the socket, then waits.
	next := `<message to='a@b'/>`
	go func() {
		time.Sleep(50 * time.Millisecond)
		server.Write([]byte(next))
	}()
	n, err := fc.Read(buf)
	if err != nil || string(buf[:n]) != next {
		t.Fatalf("read after the burst = %q, %v; want %q", buf[:n], err, next)
	}
	if left := unread(t, client); left != len(next) {
		t.Fatalf("after the burst was taken the socket holds %d bytes, want %d", left, len(next))
	}
}

// unread is how many bytes c's socket holds unread.
func unread(t *testing.T, c net.Conn) int {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// A random stream split at random points frames the same.
func TestFrameScannerRandomChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var stanzas []string
	stanzas = append(stanzas, `<stream:stream xmlns='jabber:component:accept'>`)
	for i := range 200 {
		stanzas = append(stanzas, strings.Repeat(" ", r.IntN(2))+
			`<message id='m`+string(rune('a'+i%26))+`' to="b/>"><body>x`+strings.Repeat("y>", r.IntN(5))+`</body><e/></message>`)
	}
	text := strings.Join(stanzas, "")
	got := split(text, func() int { return 1 + r.IntN(300) })
	if strings.Join(got, "|") != strings.Join(stanzas, "|") {
		t.Fatalf("random chunks framed %d pieces, want %d", len(got), len(stanzas))
	}
}

// Whatever the bytes, framing never panics, and frames the same however
// the bytes arrive.
func FuzzFrameScanner(f *testing.F) {
	for _, c := range frameCases {
		f.Add(strings.Join(c.in, ""), uint64(1))
	}
	f.Add(`<a><!--x--><![CDATA[y]]><?p q?><!DOCTYPE z></a>`, uint64(7))
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed))
		whole := split(text, func() int { return len(text) + 1 })
		parts := split(text, func() int { return 1 + r.IntN(16) })
		if strings.Join(whole, "|") != strings.Join(parts, "|") {
			t.Fatalf("framed differently in pieces:\n%q\n%q", whole, parts)
		}
	})
}
