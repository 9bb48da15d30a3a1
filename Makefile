# Berth: build, run and test. Every target that needs host packages runs
# contrib/install-deps.sh first, which is quick when everything is present.

SHELL     := /bin/bash
GO        ?= go
TAGS      := containers_image_openpgp exclude_graphdriver_btrfs nri_no_wasm
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

.PHONY: all deps build build-race run rig rig-stop run-rig test check unit unit-unprivileged integration critest node-e2e-build node-e2e node-e2e-smoke stress cover bench bench-critest install clean docs

all: build

deps:
	bash contrib/install-deps.sh

build:
	$(GO) build $(GOFLAGS_B) -o bin/berth ./cmd/berth
	$(GO) build -o bin/berth-rig ./test/rig/cmd/berth-rig

# berth built with the race detector, for the integration suite: a race the
# daemon hits while the suite drives it fails the test that provoked it.
build-race:
	$(GO) build -race $(GOFLAGS_B) -o bin/berth-race ./cmd/berth

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

# Every unit package runs under the race detector.
unit:
	$(GO) test -race -tags "$(TAGS)" -count=1 $$($(GO) list ./... | grep -v /test/)

# server/'s unit tests as a user with no privileges and a PATH without
# crun, runc, conmon or CNI plugins: its logic runs against fakes alone.
# (Built first as the caller: the module cache need not be readable.)
UNPRIVILEGED ?= setpriv --reuid=65534 --regid=65534 --clear-groups
unit-unprivileged:
	@tmp=$$(mktemp -d) && chmod 1777 $$tmp && trap 'rm -rf $$tmp' EXIT && \
	$(GO) test -c -tags "$(TAGS)" -o $$tmp/server.test ./server/ && \
	cd $$tmp && $(UNPRIVILEGED) env -i PATH=/nonexistent HOME=$$tmp TMPDIR=$$tmp ./server.test -test.count=1 && \
	echo "server/ unit tests passed as uid 65534 with PATH=/nonexistent"

# The integration suite drives a race-built berth (BERTH_BINARY overrides);
# every test fails if the daemon's log reports a data race.
INTEGRATION_BERTH ?= $(CURDIR)/bin/berth-race
INTEGRATION_ARGS  ?=
integration: build build-race
	BERTH_BINARY=$(INTEGRATION_BERTH) $(GO) test -p 1 -tags "$(TAGS)" -count=1 -timeout $(TEST_TIMEOUT) -v $(INTEGRATION_ARGS) ./test/...

test: deps check build
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory unit-unprivileged
	$(MAKE) --no-print-directory cover
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory critest
	$(MAKE) --no-print-directory node-e2e-smoke

# critest v1.37.0's conformance suite against bin/berth on the rig (its own
# registry, CNI network and daemon in a temp dir), skipping exactly the specs
# in test/critest/SKIPS.md. Prints passed/failed/skipped and every failure;
# junit.xml, critest.log, berth.log and summary.txt go to $(CRITEST_OUT).
# CRITEST_ARGS passes flags (-v streams critest's output, -keep keeps the
# temp dir); see bin/berth-critest run -h.
CRITEST_OUT  ?= $(CURDIR)/_output/critest
CRITEST_ARGS ?=
critest: deps build
	$(GO) build -o bin/berth-critest ./test/critest/cmd/berth-critest
	./bin/berth-critest run --berth bin/berth --skips test/critest/SKIPS.md --out $(CRITEST_OUT) $(CRITEST_ARGS)

# Kubernetes' node e2e suite (e2e_node.test) and the kubelet it drives, both
# k8s.io/kubernetes $(NODE_E2E_K8S_VERSION), built from the Go module proxy
# into $(NODE_E2E_CACHE)/bin; skipped when the cached binaries' STAMP matches
# the version and Go (FORCE=1 rebuilds). About 9 minutes on 2 cores when cold.
NODE_E2E_CACHE       ?= /var/cache/berth/node-e2e
NODE_E2E_K8S_VERSION ?= v1.37.2
node-e2e-build:
	NODE_E2E_CACHE=$(NODE_E2E_CACHE) K8S_VERSION=$(NODE_E2E_K8S_VERSION) GO=$(GO) bash test/nodee2e/build.sh

# The node e2e suite's [NodeConformance] specs against bin/berth: the rig's
# registry (with the suite's image stand-ins), a CNI network and berth in a
# temp dir, and the suite's own etcd, API server and kubelet. Skips come only
# from test/nodee2e/SKIPS.md; NODE_E2E_FOCUS and NODE_E2E_SKIP replace the
# focus and skip regexes. Prints passed/failed/skipped and every failure;
# junit.xml, node-e2e.log, kubelet.log, berth.log and summary.txt go to
# $(NODE_E2E_OUT). NODE_E2E_ARGS passes flags (-v, -keep, -parallel N).
NODE_E2E_OUT  ?= $(CURDIR)/_output/node-e2e
NODE_E2E_ARGS ?=
node-e2e: deps build node-e2e-build
	$(GO) build -o bin/berth-critest ./test/critest/cmd/berth-critest
	./bin/berth-critest node-e2e --berth bin/berth --e2e-bin $(NODE_E2E_CACHE)/bin --skips test/nodee2e/SKIPS.md --out $(NODE_E2E_OUT) $(NODE_E2E_ARGS)

# The part of the node e2e suite that `make test` runs (at most 15 minutes):
# the groups of specs test/nodee2e/SMOKE lists, one focus regex per line
# ("-" lines are skipped), on 4 Ginkgo processes.
NODE_E2E_SMOKE_FOCUS = $$(grep -v '^[\#-]' test/nodee2e/SMOKE | grep . | paste -sd'|')
NODE_E2E_SMOKE_SKIP  = \[Flaky\]|\[Serial\]|$$(grep '^-' test/nodee2e/SMOKE | cut -c2- | paste -sd'|')
node-e2e-smoke: deps build node-e2e-build
	$(GO) build -o bin/berth-critest ./test/critest/cmd/berth-critest
	./bin/berth-critest node-e2e --berth bin/berth --e2e-bin $(NODE_E2E_CACHE)/bin --skips test/nodee2e/SKIPS.md --parallel 4 \
		--focus "$(NODE_E2E_SMOKE_FOCUS)" --skip "$(NODE_E2E_SMOKE_SKIP)" --out $(CURDIR)/_output/node-e2e-smoke $(NODE_E2E_ARGS)

# Statement coverage of server/ from its unit tests alone (fakes, no root
# needed); the profile goes to $(COVER_OUT). Fails below COVER_MIN percent.
COVER_OUT ?= $(CURDIR)/_output/cover
COVER_MIN ?= 80
cover:
	@mkdir -p $(COVER_OUT)
	$(GO) test -tags "$(TAGS)" -count=1 -coverprofile=$(COVER_OUT)/server.out ./server/
	@$(GO) tool cover -func=$(COVER_OUT)/server.out | tail -n 1
	@$(GO) tool cover -func=$(COVER_OUT)/server.out | awk -v min=$(COVER_MIN) '/^total:/ { sub("%", "", $$3); if ($$3 + 0 < min) { print "server/ coverage " $$3 "% is below " min "%"; exit 1 } }'

# The integration suite, critest and the node e2e smoke subset while a CPU
# hog keeps every core busy, as on a busy node: races show up here that an
# idle machine hides. Not part of make test; it must pass all the same.
stress: deps build
	bash contrib/stress.sh $(MAKE) --no-print-directory integration critest node-e2e-smoke

# Kubelet-shaped pods over CRI gRPC against bin/berth, containerd 2.4 (built
# by make deps) and containerd 1.6, one after another on the rig's registry,
# each in a private root with its own socket and bridge: every step's p50,
# p90 and ratios, growth with the containers present, memory with the pods.
# bench.json, bench.md, the charts (steps, growth, memory; .svg and .png) and
# the daemons' logs go to $(BENCH_OUT). BENCH_ARGS="-runtimes=berth,containerd-2.4
# -quick" picks runtimes or shortens it; PROFILE=1 saves a CPU profile of berth
# during the lifecycles (berth.cpu.pprof, berth.cpu.top.txt).
BENCH_OUT  ?= $(CURDIR)/_output/bench
BENCH_ARGS ?=
PROFILE    ?=
bench: deps build
	$(GO) build -tags "$(TAGS)" -o bin/berth-bench ./test/bench/cmd/berth-bench
	./bin/berth-bench -berth bin/berth -out $(BENCH_OUT) $(if $(filter 1 yes true,$(PROFILE)),-profile 25s) $(BENCH_ARGS)

# The earlier comparison: critest -benchmark against bin/berth, then against
# containerd 1.6 (runc, cgroupfs) on the same registry and network; prints
# the medians side by side. Per-runtime results in $(BENCH_CRITEST_OUT)/<runtime>/,
# the table in $(BENCH_CRITEST_OUT)/summary.txt. BENCH_CRITEST_ARGS="-containerd=false"
# for berth alone.
BENCH_CRITEST_OUT  ?= $(CURDIR)/_output/bench-critest
BENCH_CRITEST_ARGS ?=
bench-critest: deps build
	$(GO) build -o bin/berth-critest ./test/critest/cmd/berth-critest
	./bin/berth-critest bench --berth bin/berth --out $(BENCH_CRITEST_OUT) $(BENCH_CRITEST_ARGS)

# make install [DESTDIR=<staging root>] [PREFIX=/usr/local]
# The binary, the systemd unit and bash completion go under PREFIX. The unit
# goes to $(PREFIX)/lib/systemd/system as CRI-O's and containerd's do
# (systemd reads /usr/local/lib/systemd/system; a PREFIX outside its search
# path needs SYSTEMDUNITDIR=/etc/systemd/system), so an admin's
# /etc/systemd/system/berth.service.d/ drop-ins override it. Configuration
# goes under /etc (where berth's defaults look), each file only when absent:
# a reinstall keeps the admin's edits. The default CNI conflist goes in only when the CNI conf dir
# holds no network config at all, so it never shadows a network provider's.
BINDIR         ?= $(PREFIX)/bin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR    ?= $(PREFIX)/share/bash-completion/completions

# install_new,SRC,DEST: install SRC as DEST (mode 0644) unless DEST exists.
define install_new
	@if [ -e "$(2)" ]; then echo "install: keeping existing $(2)"; \
	else install -D -m 0644 "$(1)" "$(2)" && echo "install: $(2)"; fi
endef

install: build
	install -D -m 0755 bin/berth $(DESTDIR)$(BINDIR)/berth
	install -d -m 0755 $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/berth.service > $(DESTDIR)$(SYSTEMDUNITDIR)/berth.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/berth.service
	install -D -m 0644 contrib/completion/berth.bash $(DESTDIR)$(BASHCOMPDIR)/berth
	install -d -m 0755 $(DESTDIR)/etc/berth/berth.toml.d
	@# The defaults alone: neither the host's /etc/berth nor its drop-ins.
	@f=$(DESTDIR)/etc/berth/berth.toml; \
	if [ -e "$$f" ]; then echo "install: keeping existing $$f"; \
	else ./bin/berth config --config /dev/null --config-dir '' > "$$f.tmp" && chmod 0644 "$$f.tmp" && \
		mv "$$f.tmp" "$$f" && echo "install: $$f (from berth config)" || { rm -f "$$f.tmp"; exit 1; }; fi
	$(call install_new,contrib/containers/registries.conf,$(DESTDIR)/etc/containers/registries.conf)
	$(call install_new,contrib/containers/policy.json,$(DESTDIR)/etc/containers/policy.json)
	$(call install_new,contrib/crictl.yaml,$(DESTDIR)/etc/crictl.yaml)
	@d=$(DESTDIR)/etc/cni/net.d; found=; \
	for f in "$$d"/*.conflist "$$d"/*.conf "$$d"/*.json; do [ -e "$$f" ] && found=$$f && break; done; \
	if [ -n "$$found" ]; then echo "install: $$d already holds a network config ($$found); not adding 10-berth-bridge.conflist"; \
	else install -D -m 0644 contrib/cni/10-berth-bridge.conflist "$$d/10-berth-bridge.conflist" && \
		echo "install: $$d/10-berth-bridge.conflist"; fi
	@echo "install: done; start it with: systemctl daemon-reload && systemctl enable --now berth"

# The README's configuration reference, generated from the config structs.
docs:
	$(GO) test ./config -run TestREADMEConfigReferenceIsCurrent -update-readme

clean:
	rm -rf bin _output
