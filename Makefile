# make test: the whole suite, as CI runs it (.ci/run). make demo: the product on this machine. Both
# install the Debian packages they need first when run as root (scripts/deps.sh), or say how.
# make install: the daemon, its configuration and its systemd unit (scripts/install.sh).
# Go from https://go.dev/dl/ unpacked into /usr/local/go works without a PATH change.
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
# An execution count, not a duration: a duration races the fuzz coordinator's deadline in Go 1.26
# (golang/go#75804) and fails with "context deadline exceeded" without any failing input.
FUZZTIME ?= 50000x

.PHONY: test deps vet unit fuzz build install demo demo-smoke e2e bench bench-smoke bench-micro chaos chaos-smoke failover

test: deps vet unit fuzz e2e demo-smoke bench-smoke chaos-smoke failover

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
	$(GO) test -run '^$$' -fuzz '^FuzzFrameScanner$$' -fuzztime $(FUZZTIME) ./xmppcomp
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

# The real chain (cmd/qqbench): Prosody, qqsim and qqgateway as separate processes, XMPP users
# online over c2s (default 1,000); prints the table of docs/benchmarks.md. For 10,000 as in its tables:
# make bench BENCH_ARGS="-users 10000 -roster-files -login-workers 64 -pprof -prosody-gc generational".
BENCH_ARGS ?= -users 1000 -pprof
bench:
	$(GO) run ./cmd/qqbench $(BENCH_ARGS)

# The same chain with 20 users and 20 messages each way: part of make test. It fails on a lost, doubled or
# refused message or a user who cannot come online, never on a timing.
bench-smoke:
	$(GO) run ./cmd/qqbench -users 20 -messages 20 -yard-messages 100 -idle 3s -latency 3s -burst 100 -settle 1s -stall 30s

# The Go micro-benchmarks of the packages (the older tables of docs/benchmarks.md).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The whole user journey (e2e/journey.py, slixmpp) against the built binaries, once on Prosody and once
# on ejabberd, then Profanity's first steps on Prosody. Needs prosody, ejabberd, python3-slixmpp,
# profanity, tmux (Debian); E2E_RACE=0 builds without -race.
e2e:
	$(GO) vet -tags e2e ./e2e
	$(GO) test -tags e2e -count=1 -timeout 10m -v -run '^(TestJourney|TestProfanity)$$' ./e2e

# The chaos suite (e2e/chaos, docs/testing.md "Chaos"): the built binaries and Prosody, messages both ways
# while the gateway is killed, Prosody restarted, QQ faults injected, QQ sessions kicked, the disk filled and
# hostile stanzas sent; fails on any lost or doubled message. Needs prosody, and root for the full disk
# (CHAOS_DISK=false leaves it out). CHAOS_SEED=n repeats a run's choices; CHAOS_ARGS adds flags
# (e.g. CHAOS_ARGS=-chaos.faults=kill,QQ).
CHAOS_SEED ?= 0
CHAOS_DISK ?= true
CHAOS_ARGS ?=
# QQ→XMPP copies re-sent after a kill -9 (sent, not yet confirmed) carry one id, XEP-0359 origin-id and
# stanza-id: clients and archives show them once. They are counted and printed; CHAOS_DEDUP_OK=false fails on them.
CHAOS_DEDUP_OK ?= true
CHAOS = $(GO) test -tags e2e -count=1 -timeout 30m -v -skip TestFailover ./e2e/chaos -args -chaos.seed=$(CHAOS_SEED) -chaos.disk=$(CHAOS_DISK) -chaos.dedup-ok=$(CHAOS_DEDUP_OK)

# 1,000 messages each way over 3 minutes.
chaos:
	$(GO) vet -tags e2e ./e2e/chaos
	$(CHAOS) -chaos.n=1000 $(CHAOS_ARGS)

# 100 each way over 30 seconds: part of make test.
chaos-smoke:
	$(GO) vet -tags e2e ./e2e/chaos
	$(CHAOS) -chaos.n=100 $(CHAOS_ARGS)

# Failover (issue 15, docs/scaling.md): a two-node ejabberd cluster balancing the transport over two
# slots, PostgreSQL, qqsim and two gateway processes; traffic both ways, kill -9 of one gateway, its
# users taken over by the other, the killed one restarted; fails on a lost or doubled message, a
# takeover over 15 s, or a QQ number used by two processes at once.
failover:
	$(GO) vet -tags e2e ./e2e/chaos
	$(GO) test -tags e2e -count=1 -timeout 20m -v -run TestFailover ./e2e/chaos $(FAILOVER_ARGS)

# The product on this machine: Prosody + qqsim (demo world) + the gateway, until Ctrl-C.
demo:
	GO=$(GO) scripts/demo.sh

# make demo, driven by a real client instead of a person, then stopped: part of make test.
demo-smoke:
	GO=$(GO) scripts/demo.sh --smoke
