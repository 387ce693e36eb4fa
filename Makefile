# make test: the whole suite, as CI runs it (.ci/run). make demo: the product on this machine.
GO ?= go
# An execution count, not a duration: a duration races the fuzz coordinator's deadline in Go 1.26
# (golang/go#75804) and fails with "context deadline exceeded" without any failing input.
FUZZTIME ?= 50000x

.PHONY: test vet unit fuzz build demo demo-smoke e2e bench

test: vet unit fuzz e2e demo-smoke

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
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./cmd/qqgateway

build:
	$(GO) build -o bin/ ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The whole user journey (e2e/journey.py, slixmpp) against the built binaries, once on Prosody and once
# on ejabberd. Needs prosody, ejabberd, python3-slixmpp (Debian); E2E_RACE=0 builds without -race.
e2e:
	$(GO) vet -tags e2e ./e2e
	$(GO) test -tags e2e -count=1 -timeout 10m -v -run '^TestJourney$$' ./e2e

# The product on this machine: Prosody + qqsim (demo world) + the gateway, until Ctrl-C.
demo:
	GO=$(GO) scripts/demo.sh

# make demo, driven by a real client instead of a person, then stopped: part of make test.
demo-smoke:
	GO=$(GO) scripts/demo.sh --smoke
