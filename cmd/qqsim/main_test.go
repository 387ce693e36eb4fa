package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// login posts the demo user's Login to base and returns the reply.
func login(t *testing.T, base string) string {
	t.Helper()
	body := "VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=" + qqproto.PasswordMD5("demo") + "&M5=1"
	resp, err := http.Post(base, "text/plain; charset=UTF-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// readAddr reads the "qqsim listening on URL" line.
func readAddr(t *testing.T, r io.Reader) string {
	t.Helper()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "qqsim listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("listening line %q", line)
	}
	return url
}

func TestRunServesAndStops(t *testing.T) {
	world := filepath.Join(t.TempDir(), "w.toml")
	os.WriteFile(world, []byte("[[account]]\nuin = 10001\npassword = \"demo\"\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-world", world, "-li", "30s"}, pw, &logs) }()
	url := readAddr(t, pr)
	if r := login(t, url); !strings.Contains(r, "RS=0&HI=60&LI=30") {
		t.Errorf("login reply %q", r)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(logs.String(), "qqsim: serving") {
		t.Errorf("logs: %s", logs.String())
	}
}

func TestRunErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[[account]]\nuin = 10001\npassword = \"x\"\ncolour = \"red\"\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-world", bad}, `unknown key "account.colour"`},
		{[]string{"-world", filepath.Join(t.TempDir(), "none.toml")}, "no such file"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-li", "10ms"}, "at least 1s"},
		{[]string{"-listen", "127.0.0.1:-1"}, "listen"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		err := run(context.Background(), c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error containing %q", c.args, err, c.want)
		}
	}
}

// TestBinarySIGTERM builds the program, serves the demo world and stops it
// with SIGTERM: exit status 0.
func TestBinarySIGTERM(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "qqsim")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
		stdout, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		url := readAddr(t, stdout)
		if r := login(t, url); !strings.Contains(r, "RS=0") {
			t.Errorf("demo login on the binary: %q", r)
		}
		cmd.Process.Signal(sig)
		errc := make(chan error, 1)
		go func() { errc <- cmd.Wait() }()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("exit after %v: %v\n%s", sig, err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("no exit after %v", sig)
		}
		if !strings.Contains(stderr.String(), "shutting down") {
			t.Errorf("stderr after %v: %s", sig, stderr.String())
		}
	}
}
