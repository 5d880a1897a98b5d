# shimless: containerd with gVisor built in.
#
#   make              build bin/containerd, bin/ctr, bin/containerd-shim-runc-v2,
#                     bin/runsc, bin/shimless-pause, bin/shimless-traces
#   make images       build the offline test images into _output/images.tar
#   make demo         build, start containerd on private dirs, run a pod, print its output
#   make test         unit tests + integration tests (root; installs what they need)
#   make install      install binaries under $(DESTDIR)$(PREFIX)/bin
#   make release      build the release bundle (hack/release.sh):
#                     _output/shimless-$(VERSION)-linux-$(GOARCH).tar.gz + .sha256sum
#   make bench        the performance bench (root; docs/performance.md)
#   make conformance  critest v1.34.0 and containerd's CRI integration suite per
#                     handler, offline (root; docs/conformance.md);
#                     STOCK=1 adds stock containerd + gVisor's shim side by side
#   make chaos        kill -9 at 200 random points, a full state disk, 500 pod
#                     cycles with fds and goroutines flat (root; docs/chaos.md)
#   make modfile      apply patches/containerd to a copy of the pinned containerd
#                     and write _output/go.mod (every Go command here uses it)
#   make clean

SHELL := /bin/bash
GO ?= go
PREFIX ?= /usr/local
DESTDIR ?=

CONTAINERD_VERSION := $(shell awk '$$1=="github.com/containerd/containerd/v2" {print $$2; exit}' go.mod)
GVISOR_VERSION := $(shell awk '$$1=="gvisor.dev/gvisor" {print $$2; exit}' go.mod)
SHIMLESS_VERSION := $(shell cat VERSION)
VERSION := $(CONTAINERD_VERSION)-shimless.$(SHIMLESS_VERSION)
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG := github.com/shimless/shimless

# containerd is built from the pinned release with patches/containerd applied
# (hack/patch-containerd.sh); the version says how many patches it carries.
PATCHES := $(sort $(wildcard patches/containerd/*.patch))
MODFILE := _output/go.mod
MOD := -modfile=$(CURDIR)/$(MODFILE)
VERSION := $(VERSION)+patches.$(words $(PATCHES))

CTRD_LDFLAGS := -X github.com/containerd/containerd/v2/version.Version=$(VERSION) \
	-X github.com/containerd/containerd/v2/version.Revision=$(REVISION) \
	-X github.com/containerd/containerd/v2/version.Package=$(PKG)
GO_TAGS := urfave_cli_no_docs no_btrfs no_devmapper no_zfs
GO_BUILD := CGO_ENABLED=0 $(GO) build $(MOD) -trimpath -tags '$(GO_TAGS)'

BINARIES := bin/containerd bin/ctr bin/containerd-shim-runc-v2 bin/runsc bin/shimless-pause bin/shimless-traces

.PHONY: all binaries images demo test unit integration bench install release clean check-gvisor-pin modfile stock FORCE
all: binaries
binaries: $(BINARIES)

modfile: $(MODFILE)
$(MODFILE): go.mod go.sum $(PATCHES) hack/patch-containerd.sh
	./hack/patch-containerd.sh

# Go's build cache makes these cheap when nothing changed; always ask go.
bin/containerd: $(MODFILE) FORCE
	$(GO_BUILD) -ldflags '$(CTRD_LDFLAGS)' -o $@ ./cmd/containerd
bin/ctr: $(MODFILE) FORCE
	$(GO_BUILD) -ldflags '$(CTRD_LDFLAGS)' -o $@ github.com/containerd/containerd/v2/cmd/ctr
bin/containerd-shim-runc-v2: $(MODFILE) FORCE
	$(GO_BUILD) -ldflags '$(CTRD_LDFLAGS)' -o $@ github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
bin/shimless-pause: $(MODFILE) FORCE
	$(GO_BUILD) -ldflags '-s -w' -o $@ ./cmd/shimless-pause
# An OTLP/HTTP receiver that prints containerd's spans as trees
# (docs/observability.md).
bin/shimless-traces: $(MODFILE) FORCE
	$(GO_BUILD) -o $@ ./cmd/shimless-traces

# runsc has its own build module (see build/runsc/go.mod); rebuilt only when
# its pin changes. CGO_ENABLED=0 is required: runsc re-execs /proc/self/exe
# after pivoting into an empty root.
bin/runsc: build/runsc/go.mod build/runsc/go.sum | check-gvisor-pin
	CGO_ENABLED=0 $(GO) build -C build/runsc -trimpath \
		-ldflags '-X gvisor.dev/gvisor/runsc/version.version=$(GVISOR_VERSION)' \
		-o $(CURDIR)/$@ gvisor.dev/gvisor/runsc

# runc for the runc handler of tests and the demo, from its own build module
# (cgo for runc's nsenter; no seccomp support compiled in).
bin/runc: build/runc/go.mod build/runc/go.sum
	CGO_ENABLED=1 $(GO) build -C build/runc -trimpath -o $(CURDIR)/$@ github.com/opencontainers/runc

# nerdctl, from build/nerdctl (its own module and go.sum; a stand-in for
# nerdctl's unpublished test framework module, see build/nerdctl/tigron).
bin/nerdctl: build/nerdctl/go.mod build/nerdctl/go.sum
	CGO_ENABLED=0 $(GO) build -C build/nerdctl -trimpath -o $(CURDIR)/$@ github.com/containerd/nerdctl/v2/cmd/nerdctl

# crictl from cri-tools, built from build/tools (its own module and go.sum).
bin/crictl: build/tools/go.mod build/tools/go.sum
	CGO_ENABLED=0 $(GO) build -C build/tools -trimpath -o $(CURDIR)/$@ sigs.k8s.io/cri-tools/cmd/crictl

# The reference the bench and the conformance runs compare against: stock
# containerd v2.4.2 (unpatched, from the module cache, through the
# top-level go.mod without our CRI patches) and gVisor's
# containerd-shim-runsc-v1 from the pinned gVisor (build/gvisor-shim).
stock: bin/stock/containerd bin/stock/containerd-shim-runsc-v1
bin/stock/containerd: go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(GO_TAGS)' \
		-ldflags '-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)' \
		-o $@ github.com/containerd/containerd/v2/cmd/containerd
# hack/gvisor-shim-overlay.sh patches one line that only lets the shim start where
# root lacks CAP_SYS_RESOURCE: a refused oom_score_adj write is ignored.
bin/stock/containerd-shim-runsc-v1: build/gvisor-shim/go.mod build/gvisor-shim/go.sum hack/gvisor-shim-overlay.sh | check-gvisor-pin
	CGO_ENABLED=0 $(GO) build -C build/gvisor-shim -trimpath -modfile "$$(./hack/gvisor-shim-overlay.sh)" -o $(CURDIR)/$@ gvisor.dev/gvisor/shim

check-gvisor-pin:
	@pin=$$(awk '$$1=="gvisor.dev/gvisor" {print $$2; exit}' build/runsc/go.mod); \
	if [ "$$pin" != "$(GVISOR_VERSION)" ]; then \
		echo "gvisor.dev/gvisor is $(GVISOR_VERSION) in go.mod but $$pin in build/runsc/go.mod" >&2; exit 1; fi
	@pin=$$(awk '$$1=="require" && $$2=="gvisor.dev/gvisor" {print $$3; exit} $$1=="gvisor.dev/gvisor" {print $$2; exit}' build/gvisor-shim/go.mod); \
	if [ "$$pin" != "$(GVISOR_VERSION)" ]; then \
		echo "gvisor.dev/gvisor is $(GVISOR_VERSION) in go.mod but $$pin in build/gvisor-shim/go.mod" >&2; exit 1; fi

images: bin/shimless-pause FORCE
	$(GO) run $(MOD) ./integration/cmd/testimages -pause bin/shimless-pause -o _output/images.tar

# Like `make test`, the demo installs what it needs first (Debian packages:
# busybox-static for the test images, CNI plugins, iproute2).
demo:
	./hack/deps.sh
	$(MAKE) binaries images bin/crictl bin/runc
	./hack/demo.sh

unit: $(MODFILE)
	$(GO) vet $(MOD) ./...
	$(GO) test $(MOD) $(UNIT_FLAGS) ./...

integration: binaries images bin/crictl bin/runc bin/nerdctl
	$(GO) test $(MOD) -tags integration -count=1 -timeout 60m -v ./integration/

test:
	./hack/test.sh

# Chaos (root, docs/chaos.md): containerd killed with SIGKILL at random
# points of pod lifecycles, a full state disk during pod create, pod
# create/remove cycles with containerd's fds and goroutines flat. The test
# command (make integration) runs the same tests short (25 points, 60
# cycles). Replay a run with CHAOS_SEED=<the seed it logged>.
CHAOS_POINTS ?= 200
CHAOS_CYCLES ?= 500
CHAOS_SEED ?=
.PHONY: chaos
chaos: binaries images bin/crictl bin/runc bin/nerdctl
	@set -o pipefail; \
	SHIMLESS_CHAOS_POINTS=$(CHAOS_POINTS) SHIMLESS_CHAOS_CYCLES=$(CHAOS_CYCLES) SHIMLESS_CHAOS_SEED=$(CHAOS_SEED) \
		$(GO) test $(MOD) -tags integration -count=1 -timeout 180m -v -run '^TestChaos' ./integration/ 2>&1 \
		| tee _output/chaos.log; rc=$$?; \
	echo "--- chaos summary (full log: _output/chaos.log)"; grep -E '^chaos' _output/chaos.log; exit $$rc

# The bench (root; docs/performance.md): shimless's runsc handlers, stock
# containerd + gVisor's shim, runc and the raw runsc CLI floor, interleaved
# in one run; pod start by CRI phase, teardown, ExecSync, per-pod host
# cost, concurrent starts, containerd restart. Prints a markdown report and
# writes it to _output/bench/. Counts: BENCH_N (serial pods per target,
# default 10), BENCH_SCALE (concurrent steps, default "20 50"),
# BENCH_EXECS, BENCH_RESTART=0 (none) or all (the stock shim's too),
# BENCH_TARGETS=runsc,shim-style,stock,runc,floor.
bench: binaries images bin/runc stock
	$(GO) build $(MOD) -o _output/shimless-bench ./integration/cmd/bench
	./_output/shimless-bench -o _output/bench/bench-$$(date -u +%Y%m%dT%H%M%SZ).md

# Fuzz the pod-author input paths: the sandbox spec builder and the
# container spec check. A longer run: make fuzz FUZZTIME=30m
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz: $(MODFILE)
	$(GO) test $(MOD) -run '^$$' -fuzz FuzzBuildSpec -fuzztime $(FUZZTIME) ./sandbox/
	$(GO) test $(MOD) -run '^$$' -fuzz FuzzCheckSpec -fuzztime $(FUZZTIME) ./runtime/

install: binaries
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINARIES) $(DESTDIR)$(PREFIX)/bin/

# Laid out like containerd's release bundles; docs/install.md says how to
# install it.
release: binaries
	./hack/release.sh '$(VERSION)' "$$($(GO) env GOARCH)"

clean:
	rm -rf bin _output

FORCE:

# Conformance (root, offline): critest v1.34.0 and containerd v2.4.2's own
# CRI integration suite against bin/containerd for the runc, runsc and
# runsc-shim-style handlers; compares the failures with
# conformance/*-expected-failures.txt. STOCK=1 then runs the same suites
# against stock containerd with gVisor's containerd-shim-runsc-v1
# (bin/stock), STOCK=only just that. `make test` runs a subset
# (hack/test.sh).
#   make conformance HANDLERS=runsc SUITES=critest FOCUS='Networking'
#   make conformance HANDLERS=runsc SUITES=cri-suite CRI_TESTS='TestContainerEvents'
#   make conformance STOCK=1
.PHONY: conformance
conformance:
	./hack/deps.sh
	$(MAKE) binaries images bin/crictl bin/runc bin/critest bin/cri-integration.test $(if $(STOCK),stock)
	HANDLERS="$(HANDLERS)" SUITES="$(SUITES)" FOCUS="$(FOCUS)" SKIP="$(SKIP)" CRI_TESTS="$(CRI_TESTS)" STOCK="$(STOCK)" ./hack/conformance.sh

# critest is a Go test binary (cmd/critest has only a _test.go file).
bin/critest: build/tools/go.mod build/tools/go.sum
	CGO_ENABLED=0 $(GO) test -C build/tools -c -trimpath -o $(CURDIR)/$@ sigs.k8s.io/cri-tools/cmd/critest

# containerd v2.4.2's CRI integration suite as a test binary, from its own
# build module (build/cri-suite: the suite's test imports are not in our
# go.mod). Unpatched: the same binary tests ours and stock.
bin/cri-integration.test: build/cri-suite/go.mod build/cri-suite/go.sum
	CGO_ENABLED=0 $(GO) test -C build/cri-suite -c -trimpath -o $(CURDIR)/$@ github.com/containerd/containerd/v2/integration
