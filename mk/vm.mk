# mk/vm.mk: the real-kernel VM tests (tests/vm, internal/testutil/vmharness, tests/vmguest).
#
#   make deps        install qemu-system-x86, busybox-static, cpio (apt, if missing), download
#                    Debian's current kernel + dmsetup, build the cached base initramfs
#                    (build/vm/<kernel-version>/; a second run does nothing)
#   make demo        dlogd serving a real kernel mirror, narrated; PROVED/FAILED at the end
#   make vmtest      every scenario: one boot for all but the crash test, two boots for it
#                    (VM_SCENARIOS=kcore,ucore to pick; "crash" names the two-boot test)
#   make vmtest-ci   the bounded slice CI can afford (VM_CI_SCENARIOS), under 10 minutes
#                    from a fresh machine, set-up included
#   make test-vm-ci  what the top-level 'make test' should run after the unit tests
#   make vmbench     the benchmark boot: bench/vm-results.md, .png and .json; with fio
#                    (scripts/vm/fio.sh) and cmirrord rows (scripts/vm/cmirrord.sh builds it from
#                    Debian's lvm2 source, scripts/vm/cluster-deps.sh gives the guest corosync)
#   make vmgolden    re-capture the kernel-written disk-log images into engine/testdata/kernel/
#
# The last boot's console log, results disk and unpacked results stay in build/vm/last-run*/
# (the demo's in build/vm/demo/).

# Included before the top-level Makefile's first target: keep 'all' the default goal.
vm_saved_default_goal := $(.DEFAULT_GOAL)

VM_SCENARIOS    ?=
VM_TIMEOUT      ?= 10m
VM_CI_SCENARIOS ?= kcore,kdisk,kgolden,ucore,udisk-if,ufile,legflush,kill9,interop,discard-hazard-local
VM_CI_TIMEOUT   ?= 6m
VM_GO_TIMEOUT   ?= 40m
VM_BENCH_ROUNDS ?= 3

VM_TEST = DLOG_VM=1 $(GO) test -count=1 -v -run '^TestVM$$' ./tests/vm/

.PHONY: deps vmtest vmtest-ci test-vm-ci vmgolden vmbench demo

deps:
	sh scripts/vm/deps.sh

vmtest: deps
	DLOG_VM_SCENARIOS='$(VM_SCENARIOS)' DLOG_VM_TIMEOUT=$(VM_TIMEOUT) $(VM_TEST) -timeout $(VM_GO_TIMEOUT)

# The go test timeout (10m) bounds build + boot; the guest's own watchdog (VM_CI_TIMEOUT) fires first.
vmtest-ci: deps
	DLOG_VM_SCENARIOS='$(VM_CI_SCENARIOS)' DLOG_VM_TIMEOUT=$(VM_CI_TIMEOUT) $(VM_TEST) -timeout 10m

# For the top-level 'make test' (after the unit tests): the same slice, quiet unless it fails.
test-vm-ci: deps
	@out=$$(mktemp); \
	if DLOG_VM_SCENARIOS='$(VM_CI_SCENARIOS)' DLOG_VM_TIMEOUT=$(VM_CI_TIMEOUT) DLOG_VM=1 DLOG_VM_QUIET=1 \
	   $(GO) test -count=1 -v -run '^TestVM$$' -timeout 10m ./tests/vm/ >$$out 2>&1; then \
	  grep -E '^(---|===|ok|PASS)|qemu ran|guest:' $$out | grep -v '^=== RUN' ; rm -f $$out; \
	else \
	  cat $$out; echo "!! test-vm-ci: the real-kernel slice ($(VM_CI_SCENARIOS)) failed; full log above, files in build/vm/last-run/"; rm -f $$out; exit 1; \
	fi

vmgolden: deps
	DLOG_VM_SCENARIOS=kgolden DLOG_VM_UPDATE_GOLDEN=1 DLOG_VM_TIMEOUT=$(VM_CI_TIMEOUT) $(VM_TEST) -timeout 10m

# fio is optional: scripts/vm/fio.sh leaves it out (and says why) when it cannot be unpacked.
vmbench: deps
	sh scripts/vm/fio.sh || echo "vmbench: fio unavailable, dd only"
	sh scripts/vm/cluster-deps.sh || echo "vmbench: no corosync for the guest (make vmcluster-deps): no cmirrord rows"
	sh scripts/vm/cmirrord.sh || echo "vmbench: cmirrord unavailable: no cmirrord rows"
	DLOG_VM_BENCH=1 DLOG_VM_QUIET=1 DLOG_VM_BENCH_ROUNDS=$(VM_BENCH_ROUNDS) $(GO) test -count=1 -v -run '^TestVMBench$$' -timeout 90m ./tests/vm/

demo: deps
	@mkdir -p bin build/vm/bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/dlogd ./cmd/dlogd
	CGO_ENABLED=0 $(GO) build -trimpath -o build/vm/bin/dlog-vmguest ./tests/vmguest
	@build/vm/bin/dlog-vmguest demo --dlogd bin/dlogd --cache build/vm --work build/vm/demo

.DEFAULT_GOAL := $(vm_saved_default_goal)
