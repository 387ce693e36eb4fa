# make test: the whole suite, as CI runs it (.ci/run). make demo: the product on this machine.
GO ?= go
FUZZTIME ?= 5s

.PHONY: test vet unit fuzz build demo bench

test: vet unit fuzz

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

unit:
	$(GO) test -race -count=1 -timeout 30m ./...

# Short fuzzing runs of every fuzz target; FUZZTIME=10m for a long one.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./qqproto
	$(GO) test -run '^$$' -fuzz '^FuzzValueRoundTrip$$' -fuzztime $(FUZZTIME) ./qqproto

build:
	$(GO) build -o bin/ ./cmd/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
