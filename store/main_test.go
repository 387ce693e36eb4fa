package store

import (
	"os"
	"testing"
)

// crashChildEnv, when set to a database path, turns the test binary into the
// child process of TestAcknowledgedSurviveSIGKILL (see crashChild).
const crashChildEnv = "QQXMPP_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}
