package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"qqxmpp/qqproto"
	"qqxmpp/xmppcomp/xmpptest"
)

// firstUIN is the QQ number of user 0; user i has firstUIN+i.
const firstUIN = 100000

// world is who the benchmark's users are: user i is the XMPP account
// u<i> (password x<i>) and the QQ account firstUIN+i (password q<i>).
// Buddies are ring neighbours, so the lists are mutual and every buddy is
// another bench user: with B buddies, user i lists i±1 … i±B/2 (mod N),
// and the chat pairs (2k, 2k+1) are each other's buddies.
type world struct {
	Users   int
	Buddies int
}

func newWorld(users, buddies int) (world, error) {
	if users < 2 || users%2 != 0 {
		return world{}, fmt.Errorf("users is %d; want an even number of at least 2 (users chat in pairs)", users)
	}
	if buddies < 1 || buddies%2 != 0 && buddies != users-1 {
		return world{}, fmt.Errorf("buddies is %d; want an even number of at least 2 (ring neighbours on both sides)", buddies)
	}
	if buddies > users-1 {
		return world{}, fmt.Errorf("buddies is %d; %d users can have at most %d", buddies, users, users-1)
	}
	return world{Users: users, Buddies: buddies}, nil
}

func (w world) uin(i int) qqproto.UIN      { return qqproto.UIN(firstUIN + i) }
func (w world) xmppUser(i int) string      { return "u" + strconv.Itoa(i) }
func (w world) xmppPassword(i int) string  { return "x" + strconv.Itoa(i) }
func (w world) qqPassword(i int) string    { return "q" + strconv.Itoa(i) }
func (w world) partner(i int) int          { return i ^ 1 }
func (w world) plainUser(i int) string     { return "y" + strconv.Itoa(i) }
func (w world) plainPassword(i int) string { return "p" + strconv.Itoa(i) }
func (w world) index(u qqproto.UIN) (int, bool) {
	i := int(u) - firstUIN
	return i, i >= 0 && i < w.Users
}

// buddies returns user i's buddies, as user indexes in ring order.
func (w world) buddies(i int) []int {
	out := make([]int, 0, w.Buddies)
	if w.Buddies == w.Users-1 { // everyone; also covers an odd count
		for j := range w.Users {
			if j != i {
				out = append(out, j)
			}
		}
		return out
	}
	for d := 1; d <= w.Buddies/2; d++ {
		out = append(out, (i+d)%w.Users, (i-d+w.Users)%w.Users)
	}
	return out
}

// writeTOML writes the world as a qqsim world file ([[account]] tables).
// Everyone accepts buddy requests (auth 0); nobody is online until the
// gateway logs in.
func (w world) writeTOML(out io.Writer) error {
	for i := range w.Users {
		if _, err := fmt.Fprintf(out, "[[account]]\nuin = %d\npassword = %q\nnick = \"bench %d\"\nbuddies = [", w.uin(i), w.qqPassword(i), i); err != nil {
			return fmt.Errorf("world file: %w", err)
		}
		for k, b := range w.buddies(i) {
			sep := ", "
			if k == 0 {
				sep = ""
			}
			if _, err := fmt.Fprintf(out, "%s%d", sep, w.uin(b)); err != nil {
				return fmt.Errorf("world file: %w", err)
			}
		}
		if _, err := io.WriteString(out, "]\n\n"); err != nil {
			return fmt.Errorf("world file: %w", err)
		}
	}
	return nil
}

// rosterFile is user i's Prosody roster (data/<host>/roster/<user>.dat)
// as it stands once the user has accepted the transport and every buddy
// and they it: each item "both". -roster-files writes it up front, so that
// 10,000 users do not each go through 4 × B subscription round trips, each
// rewriting the whole file; the gateway's own subscription requests are
// then answered by Prosody itself, as for a returning user.
func (w world) rosterFile(i int) []byte {
	var b strings.Builder
	b.WriteString("return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t\t[\"pending\"] = {};\n\t};\n")
	item := func(jid string) {
		fmt.Fprintf(&b, "\t[%s] = {\n\t\t[\"subscription\"] = \"both\";\n\t\t[\"groups\"] = {};\n\t};\n", xmpptest.LuaQuote(jid))
	}
	item(componentDomain)
	for _, j := range w.buddies(i) {
		item(fmt.Sprintf("%d@%s", w.uin(j), componentDomain))
	}
	b.WriteString("};\n")
	return []byte(b.String())
}
