package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// The file's collector settings reach the runtime; 0 leaves it alone.
func TestApplyMemorySetsTheCollector(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})
	cfg, err := parseConfig("gw.toml", []byte(minimal+"[gateway]\ngc_percent = 50\nmemory_limit = 300\n"), noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyMemory(cfg, quietLog())
	if p := debug.SetGCPercent(100); p != 50 {
		t.Errorf("GC percent %d, want 50", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 300<<20 {
		t.Errorf("memory limit %d, want %d", l, 300<<20)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	cfg, err = parseConfig("gw.toml", []byte(minimal), noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyMemory(cfg, quietLog())
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent %d after a file without the key, want the runtime's 100 untouched", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit %d after a file without the key, want none", l)
	}
}
