package qqsim

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"qqxmpp/qqproto"
)

// Account is one QQ account of the simulated world, as a world file's
// [[account]] table or the control API's POST /_sim/account describes it.
type Account struct {
	UIN      qqproto.UIN `toml:"uin" json:"uin"`
	Password string      `toml:"password" json:"password"` // plaintext here; the server keeps only its MD5
	Nick     string      `toml:"nick" json:"nick"`
	Face     int         `toml:"face" json:"face"`
	// Auth is what AddToList answers about this account: 0 anyone may add
	// it, 1 it must authorise, 3 nobody may add it.
	Auth    int           `toml:"auth" json:"auth"`
	Buddies []qqproto.UIN `toml:"buddies" json:"buddies"`
	// State is where the account stands while no client is logged in as it
	// (0 means offline). A client's Login takes over; its Logout leaves 20.
	State qqproto.Status `toml:"state" json:"state"`
	// Bot is "" or "echo": an echo bot answers every message with its text.
	Bot string `toml:"bot" json:"bot"`
	// OnAdd is how the account answers a request to add it (MT=2):
	// "approve", "reject", or "" to leave it waiting for POST /_sim/ack.
	OnAdd string `toml:"on_add" json:"on_add"`
	// Profile holds GetInfo fields by their wire key: RN, EM, AD, PR, AG,
	// SX, HP, JB, PC, PH, PV, SC, and for LV=3 CT, CY, MO.
	Profile map[string]string `toml:"profile" json:"profile"`
}

// FieldError is an account or fault setting that cannot be used; Field is
// its key as the world file and the control API spell it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrUnknownAccount is returned for a QQ number the world does not hold.
var ErrUnknownAccount = errors.New("no such QQ account")

// profileKeys are the GetInfo keys a profile may set, in the order the
// seed's GetInfo reply writes them (with LV=3's CT, CY, MO in their
// alphabetical places). NK, FC, UN and LV come from elsewhere.
var profileKeys = []string{"AD", "AG", "CT", "CY", "EM", "HP", "JB", "MO", "PC", "PH", "PR", "PV", "RN", "SC", "SX"}

var numericProfileKeys = map[string]bool{"AG": true, "SX": true}

func isProfileKey(k string) bool {
	for _, p := range profileKeys {
		if p == k {
			return true
		}
	}
	return false
}

// check validates a and returns its normalised form (profile keys upper-cased).
func (a Account) check() (Account, error) {
	if _, ok := qqproto.ParseUIN(a.UIN.String()); !ok {
		return a, &FieldError{"uin", fmt.Sprintf("%d is not a QQ number (5 to 11 digits)", a.UIN)}
	}
	if a.Password == "" {
		return a, &FieldError{"password", "must not be empty"}
	}
	switch a.Auth {
	case 0, 1, 3:
	default:
		return a, &FieldError{"auth", fmt.Sprintf("is %d; must be 0 (anyone may add), 1 (authorise) or 3 (nobody)", a.Auth)}
	}
	if a.State != 0 && !a.State.Valid() {
		return a, &FieldError{"state", fmt.Sprintf("is %d; must be 10, 20, 30 or 40", a.State)}
	}
	if a.State == 0 {
		a.State = qqproto.StatusOffline
	}
	switch a.Bot {
	case "", BotEcho:
	default:
		return a, &FieldError{"bot", fmt.Sprintf("is %q; must be \"\" or %q", a.Bot, BotEcho)}
	}
	switch a.OnAdd {
	case "", OnAddApprove, OnAddReject:
	default:
		return a, &FieldError{"on_add", fmt.Sprintf("is %q; must be \"\", %q or %q", a.OnAdd, OnAddApprove, OnAddReject)}
	}
	if a.Face < 0 {
		return a, &FieldError{"face", "must not be negative"}
	}
	for i, b := range a.Buddies {
		if _, ok := qqproto.ParseUIN(b.String()); !ok {
			return a, &FieldError{fmt.Sprintf("buddies[%d]", i), fmt.Sprintf("%d is not a QQ number", b)}
		}
		if b == a.UIN {
			return a, &FieldError{fmt.Sprintf("buddies[%d]", i), "an account cannot be its own buddy"}
		}
	}
	if len(a.Profile) > 0 {
		p := make(map[string]string, len(a.Profile))
		for k, v := range a.Profile {
			uk := strings.ToUpper(k)
			if !isProfileKey(uk) {
				return a, &FieldError{"profile." + k, "unknown GetInfo key; known: " + strings.Join(profileKeys, ", ")}
			}
			if numericProfileKeys[uk] && v != "" {
				if _, err := strconv.Atoi(v); err != nil {
					return a, &FieldError{"profile." + k, fmt.Sprintf("%q is not a number", v)}
				}
			}
			p[uk] = v
		}
		a.Profile = p
	}
	return a, nil
}

// Bot kinds and OnAdd answers.
const (
	BotEcho      = "echo"
	OnAddApprove = "approve"
	OnAddReject  = "reject"
)

type worldFile struct {
	Account []Account `toml:"account"`
}

// LoadWorld reads a world file: TOML [[account]] tables. Unknown keys,
// invalid values, duplicate numbers and buddies the file does not define
// are errors that name the file, the account and the key.
func LoadWorld(path string) ([]Account, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("world file: %w", err)
	}
	accts, err := ParseWorld(string(data))
	if err != nil {
		return nil, fmt.Errorf("world file %s: %w", path, err)
	}
	return accts, nil
}

// ParseWorld is LoadWorld on the text of a world file.
func ParseWorld(text string) ([]Account, error) {
	var w worldFile
	md, err := toml.Decode(text, &w)
	if err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = strconv.Quote(k.String())
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	seen := make(map[qqproto.UIN]bool, len(w.Account))
	for i := range w.Account {
		a, err := w.Account[i].check()
		if err != nil {
			return nil, fmt.Errorf("account %d (uin %d): %w", i+1, w.Account[i].UIN, err)
		}
		if seen[a.UIN] {
			return nil, fmt.Errorf("account %d: %w", i+1, &FieldError{"uin", fmt.Sprintf("%d is defined twice", a.UIN)})
		}
		seen[a.UIN] = true
		w.Account[i] = a
	}
	for i, a := range w.Account {
		for j, b := range a.Buddies {
			if !seen[b] {
				return nil, fmt.Errorf("account %d (uin %d): %w", i+1, a.UIN,
					&FieldError{fmt.Sprintf("buddies[%d]", j), fmt.Sprintf("%d is not an account of this file", b)})
			}
		}
	}
	return w.Account, nil
}

//go:embed demo-world.toml
var demoWorld string

// DemoWorld returns the accounts of demo-world.toml, the world the demo
// and the examples use (user 10001, password "demo").
func DemoWorld() []Account {
	accts, err := ParseWorld(demoWorld)
	if err != nil {
		// The file is embedded and tested; this cannot happen in a build
		// that passed its tests, but never panic on it.
		return nil
	}
	return accts
}

// sortedUINs returns a sorted copy without duplicates.
func sortedUINs(in []qqproto.UIN) []qqproto.UIN {
	out := append([]qqproto.UIN(nil), in...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	n := 0
	for i, u := range out {
		if i == 0 || u != out[n-1] {
			out[n] = u
			n++
		}
	}
	return out[:n]
}
