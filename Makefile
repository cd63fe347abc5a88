# dlog: the front door. Every job the project knows is a target here.
#
#   make build     build bin/dlogd
#   make test      everything CI runs: lint, unit tests under -race (fuzz corpora replayed, 200-kill
#                  crash test), the purego twin, a 10 s fuzz slice per target, a 60 s soak slice,
#                  the real-kernel VM slice (mk/vm.mk test-vm-ci), the corosync cluster slice
#                  (mk/cluster.mk clustertest-ci) and the multi-kernel cluster slice (mk/vmcluster.mk
#                  vmclustertest-ci: basic and kill-node on two qemu guests, about 2 minutes)
#   make lint      go vet + staticcheck + gofmt check
#   make unit-check  systemd-analyze verify of the systemd unit (mk/install.mk)
#   make fuzz      run every fuzz target for FUZZTIME each
#   make bench     benchmarks beside their baselines -> bench/results.md + plots (mk/bench.mk)
#   make crash     the long crash campaign (CRASH_KILLS kills)
#   make deps      install what the VM tests need (qemu, busybox, cpio) and fetch the kernel
#   make vmtest    every real-kernel scenario under qemu
#   make vmclustertest  2 and 3 qemu guests as a corosync cluster sharing one mirror's legs and log
#                  (mk/vmcluster.mk; vmclustertest-ci is its basic + kill-node slice)
#   make demo      dlogd against a live kernel mirror, explained
#   make deb       a .deb from make install DESTDIR= with dpkg-deb (mk/deb.mk; make deb-test checks it)
#   make clean     remove build outputs and caches

GO        ?= go
TIMEOUT   ?= 20m
FUZZTIME  ?= 2m
COUNT     ?= 6
CRASH_KILLS ?= 10000
BUILD     := build
BIN       := bin

PKGS      := ./...

# Sub-makefiles for the larger suites (VM, soak, ...). Targets they define are listed above.
-include mk/*.mk

.PHONY: all build test lint fmt-check fuzz fuzz-ci bench bench-raw crash clean

all: build

# VERSION, when set, is what dlogd --version prints (make deb sets it);
# otherwise the Go toolchain's build info (module version, VCS revision).
VERSION ?=

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath $(if $(VERSION),-ldflags "-X main.version=$(VERSION)") -o $(BIN)/dlogd ./cmd/dlogd

# test is what .ci/run calls. It must stay well under 30 minutes on 2 cores.
test: lint
	$(MAKE) --no-print-directory unit-check
	$(MAKE) --no-print-directory deb-test
	$(GO) test -race -timeout $(TIMEOUT) $(PKGS)
	$(GO) test -tags purego -timeout $(TIMEOUT) ./bitmap/...
	$(MAKE) --no-print-directory fuzz-ci
	$(MAKE) --no-print-directory soak-ci
	$(MAKE) --no-print-directory test-vm-ci
	$(MAKE) --no-print-directory clustertest-ci
	$(MAKE) --no-print-directory vmclustertest-ci

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint: fmt-check
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

# fuzz runs each native fuzz target on its own for FUZZTIME and keeps the
# new corpus entries in testdata/fuzz (commit them). fuzz-ci is the slice
# make test runs: every target for FUZZ_CI_TIME, nothing kept.
FUZZ_CI_TIME ?= 10s

fuzz:
	scripts/fuzz.sh $(FUZZTIME)

fuzz-ci:
	KEEP_CORPUS=0 scripts/fuzz.sh $(FUZZ_CI_TIME)

# bench writes bench/results.md and its plots (mk/bench.mk); bench-raw only
# prints the go test -bench output.
bench: bench-report

bench-raw:
	$(GO) test -run '^$$' -bench . -benchmem -count $(COUNT) -timeout 60m ./bitmap/... ./engine/... ./bench/... ./daemon/... ./transport/...

crash:
	DLOG_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -run 'TestCrash' -timeout 180m -v ./engine/

clean:
	rm -rf $(BIN) $(BUILD)
