# make test: the whole suite, as CI runs it (.ci/run). make demo: the product on this machine. Both
# install the Debian packages they need first when run as root (scripts/deps.sh), or say how.
# make install: the daemon, its configuration and its systemd unit (scripts/install.sh).
# Go from https://go.dev/dl/ unpacked into /usr/local/go works without a PATH change.
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
# An execution count, not a duration: a duration races the fuzz coordinator's deadline in Go 1.26
# (golang/go#75804) and fails with "context deadline exceeded" without any failing input.
FUZZTIME ?= 50000x

.PHONY: test deps vet unit fuzz build install demo demo-smoke e2e bench

test: deps vet unit fuzz e2e demo-smoke

deps:
	GO=$(GO) scripts/deps.sh test

# Tests that start Prosody, ejabberd or the built binaries carry the build tag "integration":
# plain `go test ./...` stays fast and needs no server; make test runs everything.
TAGS ?= integration

vet:
	$(GO) vet ./...
	$(GO) vet -tags $(TAGS) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

unit:
	$(GO) test -race -count=1 -tags $(TAGS) -timeout 30m ./...

# Short fuzzing runs of every fuzz target; FUZZTIME=5000000x for a long one.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./qqproto
	$(GO) test -run '^$$' -fuzz '^FuzzValueRoundTrip$$' -fuzztime $(FUZZTIME) ./qqproto
	$(GO) test -run '^$$' -fuzz '^FuzzReadElement$$' -fuzztime $(FUZZTIME) ./xmppcomp/internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzSplitText$$' -fuzztime $(FUZZTIME) ./gateway
	$(GO) test -run '^$$' -fuzz '^FuzzHandleStanza$$' -fuzztime $(FUZZTIME) ./gateway
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./cmd/qqgateway

build:
	$(GO) build -o bin/ ./cmd/...

# DESTDIR, PREFIX and SYSCONFDIR as usual: make install DESTDIR=/tmp/stage PREFIX=/usr
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
install:
	GO=$(GO) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) scripts/install.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The whole user journey (e2e/journey.py, slixmpp) against the built binaries, once on Prosody and once
# on ejabberd, then Profanity's first steps on Prosody. Needs prosody, ejabberd, python3-slixmpp,
# profanity, tmux (Debian); E2E_RACE=0 builds without -race.
e2e:
	$(GO) vet -tags e2e ./e2e
	$(GO) test -tags e2e -count=1 -timeout 10m -v -run '^(TestJourney|TestProfanity)$$' ./e2e

# The product on this machine: Prosody + qqsim (demo world) + the gateway, until Ctrl-C.
demo:
	GO=$(GO) scripts/demo.sh

# make demo, driven by a real client instead of a person, then stopped: part of make test.
demo-smoke:
	GO=$(GO) scripts/demo.sh --smoke
