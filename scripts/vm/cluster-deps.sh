#!/bin/sh
# scripts/vm/cluster-deps.sh: what the multi-kernel cluster tests (make vmclustertest) add to the
# base initramfs of scripts/vm/deps.sh, cached beside it as build/vm/<kernel-version>/cluster.cpio.gz:
#
#   - the network modules of the same kernel package (virtio_net and its failover dependencies),
#     unpacked from the kernel .deb (apt-get download: nothing is installed);
#   - Debian's corosync 3 (corosync, corosync-cfgtool, corosync-quorumtool) taken from the host,
#     which mk/cluster.mk's cluster-deps installs, with every library ldd names for them and for
#     the cgo dlogd (libcpg, libquorum);
#   - the directories corosync needs in a busybox initramfs (/var/lib/corosync, /var/run, /dev/shm,
#     /etc/corosync).
#
# The harness appends this archive after the base and before its own overlay. Run after
# scripts/vm/deps.sh (make deps) and make cluster-deps; a second run with the cache present does
# nothing. Environment: DLOG_VM_CACHE (default <repo>/build/vm).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${DLOG_VM_CACHE:-$ROOT/build/vm}

say() { printf 'cluster-deps: %s\n' "$*"; }
die() { printf 'cluster-deps: ERROR: %s\n' "$*" >&2; exit 1; }

[ -f "$CACHE/current" ] || die "no $CACHE/current: run scripts/vm/deps.sh (make deps) first"
KV=$(cat "$CACHE/current")
DIR=$CACHE/$KV
OUT=$DIR/cluster.cpio.gz
[ -f "$DIR/.complete" ] || die "$DIR is incomplete: run scripts/vm/deps.sh (make deps) first"
if [ -f "$OUT" ] && [ -f "$DIR/cluster.complete" ]; then
	say "cache present: $OUT ($(cat "$DIR/cluster.complete")); nothing to do"
	exit 0
fi

COROSYNC=$(command -v corosync || true)
[ -n "$COROSYNC" ] || die "corosync is not installed on the host: run 'make cluster-deps'"
for l in libcpg.so.4 libquorum.so.5; do
	[ -e "/usr/lib/x86_64-linux-gnu/$l" ] || [ -e "/lib/x86_64-linux-gnu/$l" ] || die "$l missing: run 'make cluster-deps'"
done

TMP=$(mktemp -d "$CACHE/.cluster-deps.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$TMP/debs" "$TMP/root"
KPKG=linux-image-$KV
say "downloading $KPKG for its network modules (apt-get download; nothing is installed)"
(cd "$TMP/debs" && apt-get download -q "$KPKG") >"$TMP/download.log" 2>&1 || {
	cat "$TMP/download.log" >&2
	die "apt-get download $KPKG failed; run 'apt-get update' and retry"
}
set +e
dpkg-deb --fsys-tarfile "$TMP"/debs/${KPKG}_*.deb | tar -x -C "$TMP/root" --wildcards \
	'*/modules/*/kernel/drivers/net/virtio_net.ko*' \
	'*/modules/*/kernel/drivers/net/net_failover.ko*' \
	'*/modules/*/kernel/net/core/failover.ko*' 2>"$TMP/untar.log"
set -e

B=$TMP/c
mkdir -p "$B/lib/modules" "$B/lib/x86_64-linux-gnu" "$B/usr/sbin" "$B/etc/corosync" "$B/var/lib/corosync" \
	"$B/var/log/cluster" "$B/dev/shm" "$B/run"
ln -s ../run "$B/var/run"
for m in virtio_net net_failover failover; do
	f=$(find "$TMP/root" -name "$m.ko*" | head -1)
	[ -n "$f" ] || { cat "$TMP/untar.log" >&2; die "$m.ko is not in $KPKG"; }
	case $f in
	*.ko) cp "$f" "$B/lib/modules/$m.ko" ;;
	*.ko.xz) xz -dc "$f" >"$B/lib/modules/$m.ko" ;;
	*.ko.zst) zstd -qdc "$f" >"$B/lib/modules/$m.ko" ;;
	*) die "unknown module compression: $f" ;;
	esac
done

BINS="$COROSYNC $(command -v corosync-cfgtool) $(command -v corosync-quorumtool)"
for b in $BINS; do cp "$b" "$B/usr/sbin/"; done
# The libraries of the tools and of the cgo dlogd (libcpg, libquorum). libc and ld.so are in the
# base already (from the same host), copied again here harmlessly: the later archive wins.
LIBS="$BINS $(ls /usr/lib/x86_64-linux-gnu/libcpg.so.4 /usr/lib/x86_64-linux-gnu/libquorum.so.5 2>/dev/null || ls /lib/x86_64-linux-gnu/libcpg.so.4 /lib/x86_64-linux-gnu/libquorum.so.5)"
for x in $LIBS; do
	if ldd "$x" | grep -q 'not found'; then ldd "$x" >&2; die "$x needs a library that is missing on the host"; fi
	cp -L "$x" "$B/lib/x86_64-linux-gnu/" 2>/dev/null || true
	for l in $(ldd "$x" | awk '/=>/{print $3}'); do
		cp -L "$l" "$B/lib/x86_64-linux-gnu/"
	done
done
rm -f "$B/lib/x86_64-linux-gnu/corosync" "$B/lib/x86_64-linux-gnu/corosync-cfgtool" "$B/lib/x86_64-linux-gnu/corosync-quorumtool"

(cd "$B" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 -n) >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
COROVER=$(dpkg-query -W -f '${Version}' corosync 2>/dev/null || echo unknown)
echo "corosync $COROVER; modules virtio_net net_failover failover from $KPKG" >"$DIR/cluster.complete"
say "done: $OUT ($(du -h "$OUT" | cut -f1)): $(cat "$DIR/cluster.complete")"
