package qqproto

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// UIN is a QQ number.
type UIN int64

// SystemUIN is the account the server's own notices come from.
const SystemUIN UIN = 10000

func (u UIN) String() string { return strconv.FormatInt(int64(u), 10) }

// ParseUIN reads a QQ number: decimal digits only, 5 to 11 of them, not
// starting with 0. Anything else is not a QQ number.
func ParseUIN(s string) (UIN, bool) {
	if len(s) < 5 || len(s) > 11 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return UIN(n), true
}

// PasswordMD5 is what Login sends as PS with M5=1 and all the gateway
// keeps: the lowercase hex MD5 of the password.
func PasswordMD5(password string) string {
	sum := md5.Sum([]byte(password))
	return hex.EncodeToString(sum[:])
}

// Command names as a client sends them. Replies may echo them in another
// case, so compare with strings.EqualFold.
const (
	CmdLogin        = "Login"
	CmdList         = "List"
	CmdQueryStat    = "Query_Stat"
	CmdGetInfo      = "GetInfo"
	CmdAddToList    = "AddToList"
	CmdAckAddToList = "Ack_AddToList"
	CmdDelFromList  = "DelFromList"
	CmdChangeStat   = "Change_Stat"
	CmdLogout       = "Logout"
	CmdGetMsgEx     = "GetMsgEx"
	CmdCLTMSG       = "CLTMSG"
)

// Result codes (RES).
const (
	ResOK          = 0
	ResInvalidUIN  = 5
	ResNotLoggedIn = 20
)

// Status is a QQ presence state (ST).
type Status int

const (
	StatusOnline    Status = 10
	StatusOffline   Status = 20
	StatusBusy      Status = 30
	StatusInvisible Status = 40
)

// Valid reports whether s is one of the four states of the protocol.
func (s Status) Valid() bool {
	switch s {
	case StatusOnline, StatusOffline, StatusBusy, StatusInvisible:
		return true
	}
	return false
}

func (s Status) String() string {
	switch s {
	case StatusOnline:
		return "online"
	case StatusOffline:
		return "offline"
	case StatusBusy:
		return "busy"
	case StatusInvisible:
		return "invisible"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// Session timing a server hands out at Login.
type LoginResult struct {
	PollInterval time.Duration // HI: how often the client should poll
	IdleTimeout  time.Duration // LI: silence after which the server drops the session
}

// Buddy is an online buddy as Query_Stat reports it.
type Buddy struct {
	UIN    UIN
	Nick   string
	Face   int
	Status Status
}

// FaceImage is the picture number the official clients used for a face id
// (FC 270 → 91, shown as 91.bmp).
func FaceImage(face int) int { return face/3 + 1 }

// Sex as GetInfo reports it (SX).
type Sex int

const (
	SexMale    Sex = 0
	SexFemale  Sex = 1
	SexUnknown Sex = -1
)

// Profile is a user's GetInfo record. Text fields are decoded; Profile
// (PR) is unescaped twice, as the server sends it.
type Profile struct {
	UIN      UIN
	Nick     string // NK
	Face     int    // FC
	Level    int    // LV asked for
	RealName string // RN
	Age      int    // AG
	Sex      Sex    // SX
	Email    string // EM
	Homepage string // HP
	Job      string // JB
	Phone    string // PH
	Mobile   string // MO (LV=3)
	Address  string // AD
	Postcode string // PC
	Province string // PV
	City     string // CT (LV=3)
	Country  string // CY (LV=3)
	School   string // SC
	About    string // PR
}

// AddResult is a buddy's answer to AddToList (CD).
type AddResult int

const (
	AddAccepted  AddResult = 0 // anyone may add them: added at once
	AddNeedsAuth AddResult = 1 // they must authorise: send Ack_AddToList CD=2
	AddAuthAlt   AddResult = 2 // seen from one client; treat as AddNeedsAuth
	AddRefused   AddResult = 3 // they accept nobody
)

// AckCode is what Ack_AddToList says (CD).
type AckCode int

const (
	AckApprove AckCode = 0 // let them add me
	AckReject  AckCode = 1 // refuse them
	AckRequest AckCode = 2 // ask them to let me add them
)

// MessageType is the MT of a GetMsgEx item.
type MessageType int

const (
	MsgAddRequest  MessageType = 2  // UN asks to add you; text is their reason
	MsgAddAccepted MessageType = 3  // UN accepted your request
	MsgAddRefused  MessageType = 4  // UN refused it; text is the reason
	MsgBuddy       MessageType = 9  // a buddy's message
	MsgSystem      MessageType = 99 // a system notice, or a state change of UN
)

// Message is one item of a GetMsgEx reply. Text is exactly as it came.
type Message struct {
	Type MessageType
	From UIN
	Text string
}

// State returns the new state of From when the message is a state notice
// (MT=99 with a state code as text; the server pads it with spaces).
func (m Message) State() (Status, bool) {
	if m.Type != MsgSystem {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(m.Text))
	if err != nil || !Status(n).Valid() {
		return 0, false
	}
	return Status(n), true
}
