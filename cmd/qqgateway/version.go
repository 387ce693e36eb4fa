package main

import (
	"runtime"
	"runtime/debug"
)

// version is set at build time:
//
//	go build -ldflags "-X main.version=1.2.0" ./cmd/qqgateway
//
// Left empty, it comes from the build information the go command embeds.
var version string

// versionString is the gateway's version: the one set at build time, else
// the module version, else the VCS revision (with "-dirty" for a modified
// checkout), else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// versionLine is what -version prints.
func versionLine() string {
	return "qqgateway " + versionString() + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
