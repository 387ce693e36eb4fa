package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"qqxmpp/xmppcomp/xmpptest"
)

// prosodyEncode is how Prosody's datamanager names files and directories
// (util/datamanager.lua, encode): every byte that is not a letter or a
// digit becomes %xx in lower-case hex, so "qq.localhost" is stored as
// "qq%2elocalhost".
func prosodyEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// accountFile is the content of an internal_plain account of Prosody
// 0.12: the file prosodyctl register writes, data/<host>/accounts/<user>.dat.
func accountFile(password string) []byte {
	return []byte("return {\n\t[\"password\"] = " + xmpptest.LuaQuote(password) + ";\n};\n")
}

// accountWriter writes Prosody accounts straight into its data directory,
// thousands a second, instead of one prosodyctl (a Lua start-up) per user.
// Prosody reads the file at each login, so it may run already.
type accountWriter struct{ dir, rosters string }

func newAccountWriter(dataDir, host string) (accountWriter, error) {
	a := accountWriter{dir: filepath.Join(dataDir, prosodyEncode(host), "accounts"),
		rosters: filepath.Join(dataDir, prosodyEncode(host), "roster")}
	for _, d := range []string{a.dir, a.rosters} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return accountWriter{}, fmt.Errorf("prosody data: %w", err)
		}
	}
	return a, nil
}

func (a accountWriter) write(user, password string) error {
	// Prosody stores user names nodeprepped (lower case).
	path := filepath.Join(a.dir, prosodyEncode(strings.ToLower(user))+".dat")
	if err := os.WriteFile(path, accountFile(password), 0o600); err != nil {
		return fmt.Errorf("prosody account %s: %w", user, err)
	}
	return nil
}

// writeRoster writes user's roster file (see world.rosterFile).
func (a accountWriter) writeRoster(user string, roster []byte) error {
	path := filepath.Join(a.rosters, prosodyEncode(strings.ToLower(user))+".dat")
	if err := os.WriteFile(path, roster, 0o600); err != nil {
		return fmt.Errorf("prosody roster of %s: %w", user, err)
	}
	return nil
}
