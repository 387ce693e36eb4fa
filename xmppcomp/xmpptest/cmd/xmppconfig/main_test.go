package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	env := func(k string) string {
		if k == secretEnv {
			return "s3cret"
		}
		return ""
	}
	var out, errOut bytes.Buffer
	args := []string{"-dir", "/run/x", "-component", "qq.localhost", "-c2s-port", "5222", "-component-port", "5347",
		"-cert", "/run/x/tls.crt", "-key", "/run/x/tls.key"}
	if code := run(args, env, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{`Component "qq.localhost"`, `component_secret = "s3cret"`, "c2s_ports = { 5222 }",
		`ssl = { certificate = "/run/x/tls.crt"; key = "/run/x/tls.key" }`, `"tls";`, `info = "/run/x/prosody.log"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s:\n%s", want, out.String())
		}
	}

	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{args, func(string) string { return "" }, "XMPPCONFIG_SECRET"},
		{args[:6], env, "ports"},
		{append([]string{"-kind", "ejabberd", "-api-port", "1"}, args...), env, "no TLS"},
		{[]string{"-nope"}, env, "-nope"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(tc.args, tc.env, &out, &errOut); code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and a message with %q", tc.args, code, out.String(), errOut.String(), tc.want)
		}
	}
}
