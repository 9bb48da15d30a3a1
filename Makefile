# Berth: build, run and test. Every target that needs host packages runs
# contrib/install-deps.sh first, which is quick when everything is present.

SHELL     := /bin/bash
GO        ?= go
TAGS      := containers_image_openpgp exclude_graphdriver_btrfs
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/berth-dev/berth/version.Version=$(VERSION) -X github.com/berth-dev/berth/version.GitCommit=$(COMMIT)
GOFLAGS_B := -tags "$(TAGS)" -ldflags "$(LDFLAGS)"
PREFIX    ?= /usr/local
DESTDIR   ?=
ARGS      ?=
RIG_DIR   ?= /tmp/berth-rig
RIG_PORT  ?= 5000
# The integration suites pull images and run real containers; the whole run
# must stay well inside CI's 90 minutes.
TEST_TIMEOUT ?= 40m

.PHONY: all deps build run rig rig-stop run-rig test check unit integration install clean

all: build

deps:
	bash contrib/install-deps.sh

build:
	$(GO) build $(GOFLAGS_B) -o bin/berth ./cmd/berth
	$(GO) build -o bin/berth-rig ./test/rig/cmd/berth-rig

# Runs berth in the foreground with its defaults (or ARGS="--flag ...").
run: deps build
	./bin/berth $(ARGS)

# Starts the test registry with the rig's images on 127.0.0.1:$(RIG_PORT) and
# writes a registries.conf that mirrors registry.k8s.io, docker.io, gcr.io,
# k8s.gcr.io and quay.io to it.
rig: deps build
	./bin/berth-rig serve --daemon --dir $(RIG_DIR) --port $(RIG_PORT)

rig-stop:
	./bin/berth-rig stop --dir $(RIG_DIR)

# berth with its defaults, except that images come from the rig's registry.
run-rig: rig
	./bin/berth --registries-conf $(RIG_DIR)/registries.conf --signature-policy $(RIG_DIR)/policy.json $(ARGS)

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

unit:
	$(GO) test -tags "$(TAGS)" -count=1 $$($(GO) list ./... | grep -v /test/)

integration: build
	BERTH_BINARY=$(CURDIR)/bin/berth $(GO) test -tags "$(TAGS)" -count=1 -timeout $(TEST_TIMEOUT) -v ./test/...

test: deps check build
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration

install: build
	install -D -m 0755 bin/berth $(DESTDIR)$(PREFIX)/bin/berth

clean:
	rm -rf bin _output
