// Command qqsim runs the emulated QQ HTTP server (package qqproto/qqsim)
// over a world of accounts read from a TOML file:
//
//	qqsim -listen 127.0.0.1:8000 -world qqproto/qqsim/demo-world.toml
//
// Without -world it serves the built-in demo world (user 10001, password
// "demo"). It prints "qqsim listening on http://ADDR/" on stdout once it
// accepts connections (with port 0, ADDR has the port picked), logs to
// stderr, and shuts down cleanly on SIGINT or SIGTERM. The control API for
// tests and scripts is under /_sim/: JSON in and out, a 400 naming the field
// for bad input, a 404 for a QQ number no account has (see the package
// documentation of qqproto/qqsim for its calls).
package main
