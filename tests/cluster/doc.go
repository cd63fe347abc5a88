// Package cluster is the multi-node test of dlogd's cluster logs (make
// clustertest): three nodes on one machine, each a network namespace made
// by the test, joined by veth pairs to a bridge in a hub namespace, each
// with its own corosync (started by the test, on its veth address inside
// those namespaces only, with its own /run) and its own dlogd on the unix
// transport. The test process plays every node's kernel (a model of
// dm-raid1 driving the log) with a random workload on a shared log, kills
// one node (corosync and dlogd, SIGKILL) in the middle of writes again and
// again, and after every membership change checks that no acknowledged
// mark of any node is lost and that resync hands each dirty region to one
// node at a time, never while another node writes it. It needs root,
// iproute2, util-linux's unshare and Debian's corosync (make cluster-deps);
// it is skipped unless DLOG_CLUSTERTEST=1.
package cluster
