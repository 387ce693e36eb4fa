package main

import (
	"runtime/debug"

	"github.com/sirupsen/logrus"
)

// applyMemory sets the Go collector as [gateway] gc_percent and
// memory_limit say. The heap grows to (1 + gc_percent/100) times the live
// data before a collection, and the process holds about that: a lower
// percentage buys memory per user with collector CPU per message
// (docs/benchmarks.md has the figures). A memory limit makes the
// collector work harder only as the process nears it.
func applyMemory(cfg *fileConfig, log logrus.FieldLogger) {
	fields := logrus.Fields{}
	if p := int(cfg.Gateway.GCPercent); p > 0 {
		debug.SetGCPercent(p)
		fields["gc_percent"] = p
	}
	if mib := int64(cfg.Gateway.MemoryLimit); mib > 0 {
		debug.SetMemoryLimit(mib << 20)
		fields["memory_limit_mib"] = mib
	}
	if len(fields) > 0 {
		log.WithFields(fields).Info("qqgateway: collector settings applied")
	}
}
