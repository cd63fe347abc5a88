# mk/vm.mk: the real-kernel VM tests (tests/vm, internal/vmharness, cmd/dlog-vmguest).
#
#   make deps        install qemu-system-x86, busybox-static, cpio (apt, if missing), download
#                    Debian's current kernel + dmsetup, build the cached base initramfs
#                    (build/vm/<kernel-version>/; a second run does nothing)
#   make vmtest      every scenario in one boot (VM_SCENARIOS=kcore,kdisk to pick)
#   make vmtest-ci   the bounded slice CI can afford (VM_CI_SCENARIOS), under 10 minutes
#   make vmgolden    re-capture the kernel-written disk-log images into engine/testdata/kernel/
#
# The last boot's console log, results disk and unpacked results stay in build/vm/last-run/.

# Included before the top-level Makefile's first target: keep 'all' the default goal.
vm_saved_default_goal := $(.DEFAULT_GOAL)

VM_SCENARIOS    ?=
VM_TIMEOUT      ?= 8m
VM_CI_SCENARIOS ?= kcore,kdisk,kgolden,dlogd-smoke
VM_CI_TIMEOUT   ?= 5m
VM_GO_TIMEOUT   ?= 30m

VM_TEST = DLOG_VM=1 $(GO) test -count=1 -v ./tests/vm/

.PHONY: deps vmtest vmtest-ci vmgolden

deps:
	sh scripts/vm/deps.sh

vmtest: deps
	DLOG_VM_SCENARIOS='$(VM_SCENARIOS)' DLOG_VM_TIMEOUT=$(VM_TIMEOUT) $(VM_TEST) -timeout $(VM_GO_TIMEOUT)

# The go test timeout (10m) bounds build + boot; the guest's own watchdog (VM_CI_TIMEOUT) fires first.
vmtest-ci: deps
	DLOG_VM_SCENARIOS='$(VM_CI_SCENARIOS)' DLOG_VM_TIMEOUT=$(VM_CI_TIMEOUT) $(VM_TEST) -timeout 10m

vmgolden: deps
	DLOG_VM_SCENARIOS=kgolden DLOG_VM_UPDATE_GOLDEN=1 DLOG_VM_TIMEOUT=$(VM_CI_TIMEOUT) $(VM_TEST) -timeout 10m

.DEFAULT_GOAL := $(vm_saved_default_goal)
