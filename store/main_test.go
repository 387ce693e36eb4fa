package store

import (
	"fmt"
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
	code := m.Run()
	if err := stopServers(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	os.Exit(code)
}
