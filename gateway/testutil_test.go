package gateway

// Helpers that the unit harness and the integration environment
// (integration_test.go, build tag integration) both need.

import (
	"net/http/httptest"
	"testing"

	"qqxmpp/qqproto/qqsim"
)

// startQQ starts qqsim with accounts behind an HTTP server on loopback,
// closed at cleanup, and returns it with the URL for Config.QQ.Server.
func startQQ(t testing.TB, opts qqsim.Options, accounts ...qqsim.Account) (*qqsim.Server, string) {
	t.Helper()
	sim := qqsim.New(opts)
	for _, a := range accounts {
		if err := sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	return sim, hs.URL + "/"
}
