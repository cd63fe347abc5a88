# mk/cluster.mk: dlogd on a cluster (cluster/, cluster/cpg, tests/cluster).
#
#   make cluster-deps       install corosync, libcpg-dev and libquorum-dev (apt, only if missing)
#   make build-cluster      bin/dlogd-cluster: dlogd with corosync support (cgo, -tags corosync,
#                           dynamically linked to libcpg and libquorum); make build stays static, without it
#   make clustertest        the multi-node kill test: 3 network namespaces with a corosync and a dlogd each,
#                           CLUSTERTEST_DURATION (default 4m) of a random workload on a shared log, split between
#                           clustered-disk and clustered-core, a node killed (SIGKILL) mid-write again and
#                           again, invariants checked after every membership change; then the same for
#                           CLUSTERTEST_KNET_DURATION over knet. CLUSTERTEST_SEED=N replays a seed's choices.
#   make clustertest-ci     the bounded slice CI can afford: 70 s over udpu, 30 s over knet, plus the fuzz
#                           corpora and race tests of cluster/ (under 4 minutes)
#   make clustertest-bench  mark+flush and IN_SYNC round trips, single-node dlogd vs a 3-node cluster, over
#                           udpu and knet; the table goes to build/cluster/bench.md
#
# Needs root, iproute2 and util-linux (unshare). Each run makes its own namespaces (dlogc<pid>-*), addresses
# (10.213.x.0/24, inside them only) and corosync.conf files, and removes them at the end.

# Included before the top-level Makefile's first target: keep 'all' the default goal.
cluster_saved_default_goal := $(.DEFAULT_GOAL)

CLUSTERTEST_DURATION      ?= 4m
CLUSTERTEST_KNET_DURATION ?= 1m
CLUSTERTEST_SEED          ?=
CLUSTER_DIR               ?= $(BUILD)/cluster

CLUSTER_TEST = DLOG_CLUSTERTEST=1 DLOG_CLUSTERTEST_SEED=$(CLUSTERTEST_SEED) $(GO) test -count=1 -v -run 'TestCluster(Kill|NoCorosync)' ./tests/cluster/

.PHONY: cluster-deps build-cluster clustertest clustertest-ci clustertest-bench

cluster-deps:
	@if ! command -v corosync >/dev/null || [ ! -f /usr/include/corosync/cpg.h ] || [ ! -f /usr/include/corosync/quorum.h ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			corosync libcpg-dev libquorum-dev iproute2 util-linux; \
	fi

build-cluster: cluster-deps
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build -trimpath -tags corosync -o $(BIN)/dlogd-cluster ./cmd/dlogd

clustertest: cluster-deps
	$(GO) vet -tags corosync ./cluster/... ./tests/cluster/
	DLOG_CLUSTERTEST_DURATION=$(CLUSTERTEST_DURATION) DLOG_CLUSTERTEST_TRANSPORT=udpu $(CLUSTER_TEST) -timeout 60m
	DLOG_CLUSTERTEST_DURATION=$(CLUSTERTEST_KNET_DURATION) DLOG_CLUSTERTEST_TRANSPORT=knet $(CLUSTER_TEST) -timeout 30m

clustertest-ci: cluster-deps
	$(GO) vet -tags corosync ./cluster/... ./tests/cluster/
	$(GO) tool staticcheck -tags corosync ./cluster/cpg
	$(GO) test -race -count=1 -timeout 5m ./cluster/...
	DLOG_CLUSTERTEST_DURATION=70s DLOG_CLUSTERTEST_TRANSPORT=udpu $(CLUSTER_TEST) -timeout 8m
	DLOG_CLUSTERTEST_DURATION=30s DLOG_CLUSTERTEST_TRANSPORT=knet DLOG_CLUSTERTEST_TYPES=clustered-disk $(CLUSTER_TEST) -timeout 5m

clustertest-bench: cluster-deps
	@mkdir -p $(CLUSTER_DIR)
	DLOG_CLUSTERBENCH=1 DLOG_CLUSTERBENCH_OUT=$(abspath $(CLUSTER_DIR))/bench.md $(GO) test -count=1 -v -run 'TestClusterBench' -timeout 20m ./tests/cluster/
	@cat $(CLUSTER_DIR)/bench.md

.DEFAULT_GOAL := $(cluster_saved_default_goal)
