//go:build unix

package qqproto_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

// The two benchmarks below send the same CLTMSG line to the same emulator
// over loopback HTTP, one through Client (on its Transport) and one as a
// bare POST through net/http. The emulator runs in a process of its own
// (this test binary, started again), so that the CPU each reports per
// message, client-µs/op, is the client's alone: what the gateway pays.

// simChildEnv makes the test binary serve an emulator instead of testing.
const simChildEnv = "QQPROTO_BENCH_SIM"

func TestMain(m *testing.M) {
	if os.Getenv(simChildEnv) != "" {
		serveSimChild()
		return
	}
	os.Exit(m.Run())
}

// serveSimChild serves an emulator with the sender 10001 and the
// recipient 10002 on a free loopback port, prints its URL and serves
// until its standard input closes (its parent is gone).
func serveSimChild() {
	sim := qqsim.New(qqsim.Options{})
	for _, a := range []qqsim.Account{{UIN: 10001, Password: "a"}, {UIN: 10002, Password: "b"}} {
		if err := sim.AddAccount(a); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(ln, sim)
	fmt.Printf("http://%s/\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
}

// remoteSim starts the emulator's process and returns its URL.
func remoteSim(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), simChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("emulator process: %v", err)
	}
	return strings.TrimSpace(url)
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportClientCPU reports the CPU used since start per iteration.
func reportClientCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/1e3, "client-µs/op")
}

const benchText = "你好, how are you & what's new?"

func BenchmarkClientSendMessage(b *testing.B) {
	url := remoteSim(b)
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()
	c := qqproto.NewClient(10001, qqproto.Options{Server: url, Transport: tr})
	ctx := context.Background()
	if _, err := c.Login(ctx, qqproto.PasswordMD5("a")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
	for i := 0; i < b.N; i++ {
		if err := c.SendMessage(ctx, 10002, benchText); err != nil {
			b.Fatal(err)
		}
	}
	reportClientCPU(b, start)
}

func BenchmarkRawPost(b *testing.B) {
	url := remoteSim(b)
	if _, err := qqproto.NewClient(10001, qqproto.Options{Server: url}).Login(context.Background(), qqproto.PasswordMD5("a")); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	seq := 1 << 20
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
	for i := 0; i < b.N; i++ {
		seq++
		line := "VER=1.1&CMD=CLTMSG&SEQ=" + strconv.Itoa(seq) + "&UIN=10001&UN=10002&MG=" + qqproto.Escape(benchText)
		resp, err := hc.Post(url, "text/plain; charset=UTF-8", strings.NewReader(line))
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "&RES=0") {
			b.Fatalf("raw post: %v %s %q", err, resp.Status, body)
		}
	}
	reportClientCPU(b, start)
}
