package main

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a ')' must not shift the fields.
	stat := "4242 (qq gate) way) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 0 0\n"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 325 * clockTick; got != want {
		t.Errorf("utime+stime = %v, want %v", got, want)
	}
	if _, err := parseStatCPU("4242 (short) S 1 2"); err == nil {
		t.Error("a truncated stat line was accepted")
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tprosody\nVmPeak:\t  300000 kB\nVmRSS:\t   51234 kB\nThreads:\t1\n"
	got, err := parseStatusRSS(bufio.NewScanner(strings.NewReader(status)))
	if err != nil {
		t.Fatal(err)
	}
	if got != 51234*1024 {
		t.Errorf("VmRSS = %d bytes, want %d", got, 51234*1024)
	}
	if _, err := parseStatusRSS(bufio.NewScanner(strings.NewReader("Name:\tzombie\n"))); err == nil {
		t.Error("a status without VmRSS was accepted")
	}
}

// The test process itself: its CPU grows with work, its RSS is not zero.
func TestReadUsageOfSelf(t *testing.T) {
	a, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var z usage
	for x := 0; z.CPU <= a.CPU && time.Now().Before(deadline); x++ {
		for i := range 1_000_000 {
			x ^= i
		}
		if z, err = readUsage(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if z.CPU <= a.CPU {
		t.Errorf("CPU did not grow after 10 s of work: %v then %v", a.CPU, z.CPU)
	}
	if z.RSS < 1<<20 {
		t.Errorf("RSS %d bytes: implausibly small for a Go test binary", z.RSS)
	}
}
