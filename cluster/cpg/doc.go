// Package cpg joins corosync closed process groups (CPG) for package
// cluster: a small cgo binding to libcpg and libquorum, the libraries
// cmirrord links. Messages are multicast with CPG_TYPE_AGREED (total
// order, virtual synchrony) and delivered, with membership changes, from
// one goroutine per group that polls the group's file descriptor and calls
// cpg_dispatch. Quorate asks votequorum through libquorum at each call.
//
// The binding is built with cgo and the build tag corosync, and needs
// Debian's libcpg-dev and libquorum-dev (make cluster-deps, make
// build-cluster). Any other build (make build is static, CGO_ENABLED=0;
// go test ./... on a machine without corosync) gets a stub whose transport
// reports that dlogd was built without corosync support, so CTR of a
// clustered log fails with that message instead of hanging.
package cpg
