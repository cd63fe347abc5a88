# mk/vmcluster.mk: the multi-kernel cluster tests (tests/vm TestVMCluster, tests/vmguest cl-* scenarios).
#
#   make vmcluster-deps     make deps + make cluster-deps, then scripts/vm/cluster-deps.sh: corosync 3, its
#                           libraries, libcpg/libquorum for the cgo dlogd and the virtio_net modules, as an
#                           extra initramfs beside the cached kernel (build/vm/<version>/cluster.cpio.gz)
#   make vmclustertest      every cluster scenario (VMCLUSTER_SCENARIOS to pick): 2 or 3 qemu guests per
#                           scenario sharing the legs, the log and a mailbox disk (raw images under
#                           build/vm/cluster/<scenario>/, cache=none, share-rw), networked through a UDP hub
#                           on 127.0.0.1, each running corosync, dlogd --cluster corosync and a real mirror
#   make vmclustertest-ci   the slice for make test: basic and kill-node on two guests
#   make vmclusterbench     two guests: 16 MiB of 4 KiB O_DIRECT writes on node 1 (node 2 an idle member) and
#                           idle initial resyncs, clustered-core and clustered-disk on both nodes against the
#                           same logs served by dlogd without --cluster on node 1 (VMCLUSTERBENCH_ROUNDS rounds,
#                           default 2; VMCLUSTERBENCH_OPS=resync, write or resyncwrite (16 timed 4 KiB
#                           writes on node 1 into a fresh mirror while it resyncs) for one op only,
#                           VMCLUSTERBENCH_DEBUG=1 for dlogd's debug timeline in each node's dlogd.log);
#                           writes bench/vmcluster-results.md and .json
#
# VMCLUSTER_LOG=clustered-core switches the log type; VMCLUSTER_CUT sets the partition's cut (default 45s).
# No host networking and no root networking: the guests' frames travel as UDP datagrams on 127.0.0.1.

# Included before the top-level Makefile's first target: keep 'all' the default goal.
vmcluster_saved_default_goal := $(.DEFAULT_GOAL)

VMCLUSTER_SCENARIOS    ?=
VMCLUSTER_CI_SCENARIOS ?= basic,kill-node
VMCLUSTER_LOG          ?= clustered-disk
VMCLUSTER_CUT          ?= 45s
VMCLUSTER_TIMEOUT      ?= 9m
VMCLUSTERBENCH_ROUNDS  ?= 2
VMCLUSTERBENCH_OPS     ?=
VMCLUSTERBENCH_DEBUG   ?=

VMCLUSTER_TEST = DLOG_VMCLUSTER=1 DLOG_VMCLUSTER_LOG=$(VMCLUSTER_LOG) DLOG_VMCLUSTER_CUT=$(VMCLUSTER_CUT) \
	DLOG_VM_TIMEOUT=$(VMCLUSTER_TIMEOUT) $(GO) test -count=1 -v -run '^TestVMCluster$$' ./tests/vm/

.PHONY: vmcluster-deps vmclustertest vmclustertest-ci vmclusterbench

vmcluster-deps: deps cluster-deps
	sh scripts/vm/cluster-deps.sh

vmclustertest: vmcluster-deps
	DLOG_VMCLUSTER_SCENARIOS='$(VMCLUSTER_SCENARIOS)' $(VMCLUSTER_TEST) -timeout 120m

vmclustertest-ci: vmcluster-deps
	DLOG_VMCLUSTER_SCENARIOS='$(VMCLUSTER_CI_SCENARIOS)' DLOG_VM_QUIET=1 $(VMCLUSTER_TEST) -timeout 15m

vmclusterbench: vmcluster-deps
	DLOG_VMCLUSTER_BENCH=1 DLOG_VMCLUSTER_BENCH_ROUNDS=$(VMCLUSTERBENCH_ROUNDS) \
		DLOG_VMCLUSTER_BENCH_OPS='$(VMCLUSTERBENCH_OPS)' DLOG_VMCLUSTER_BENCH_DEBUG='$(VMCLUSTERBENCH_DEBUG)' \
		$(GO) test -count=1 -v -run '^TestVMClusterBench$$' ./tests/vm/ -timeout 120m

.DEFAULT_GOAL := $(vmcluster_saved_default_goal)
