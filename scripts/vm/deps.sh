#!/bin/sh
# scripts/vm/deps.sh: everything the real-kernel VM tests need, cached by kernel version.
#
#   scripts/vm/deps.sh            (what `make deps` runs)
#
# 1. Installs the host tools if missing: qemu-system-x86 busybox-static cpio
#    (apt-get, --no-install-recommends; needs root).
# 2. Resolves Debian's current kernel package at run time (apt-cache depends linux-image-amd64),
#    downloads it with dmsetup and dmsetup's libraries (apt-get download: nothing is installed).
# 3. Unpacks only vmlinuz, the dm/loop/virtio modules and dmsetup, decompressing .ko.xz/.ko.zst.
# 4. Builds the base initramfs (busybox + applet links, modules, dmsetup + libs) into
#    build/vm/<kernel-version>/initrd-base.cpio.gz, and writes build/vm/current.
#
# The test harness (internal/testutil/vmharness) appends its own overlay (the guest driver, /init,
# dlogd) to the base at every boot. A second run with the cache present does nothing.
#
# Environment: DLOG_VM_CACHE (default <repo>/build/vm), DLOG_VM_KERNEL_PKG (override the
# resolved kernel package, e.g. linux-image-6.1.0-56-amd64).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${DLOG_VM_CACHE:-$ROOT/build/vm}

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

# ---- 1. host tools -----------------------------------------------------------------------------
static_busybox() { # a dynamic /bin/busybox (package busybox) cannot run in the initramfs
	[ -x /bin/busybox ] || return 1
	! ldd /bin/busybox >/dev/null 2>&1
}
missing=
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
static_busybox || missing="$missing busybox-static"
command -v cpio >/dev/null 2>&1 || missing="$missing cpio"
if [ -n "$missing" ]; then
	say "installing host tools:$missing"
	if [ "$(id -u)" != 0 ]; then
		die "not root: run 'sudo apt-get install --no-install-recommends$missing' and rerun"
	fi
	apt-get update -qq || die "apt-get update failed; check the Debian mirror in /etc/apt/sources.list*"
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		die "apt-get install$missing failed; run it by hand to see why"
else
	say "host tools present: $(command -v qemu-system-x86_64), /bin/busybox (static), $(command -v cpio)"
fi
for t in apt-get apt-cache dpkg-deb tar gzip ldd; do
	command -v $t >/dev/null 2>&1 || die "$t is missing: this script needs a Debian-like host (apt, dpkg, tar, gzip, libc-bin)"
done

# ---- 2. which kernel ------------------------------------------------------------------------------
resolve_kernel() {
	apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}
KPKG=${DLOG_VM_KERNEL_PKG:-}
if [ -z "$KPKG" ]; then
	KPKG=$(resolve_kernel)
	if [ -z "$KPKG" ]; then
		say "apt-cache does not know linux-image-amd64 yet: running apt-get update"
		apt-get update -qq || die "apt-get update failed; check the Debian mirror in /etc/apt/sources.list*"
		KPKG=$(resolve_kernel)
	fi
	[ -n "$KPKG" ] || die "cannot resolve the kernel package: 'apt-cache depends linux-image-amd64' names no linux-image-<version>"
fi
KV=${KPKG#linux-image-}
DIR=$CACHE/$KV
say "kernel package $KPKG (kernel $KV), cache $DIR"

if [ -f "$DIR/.complete" ] && [ -f "$DIR/vmlinuz" ] && [ -f "$DIR/initrd-base.cpio.gz" ]; then
	echo "$KV" >"$CACHE/current"
	say "cache present: $DIR ($(cat "$DIR/.complete")); nothing to do"
	exit 0
fi

# ---- 3. download and unpack -------------------------------------------------------------------
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.deps.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$TMP/debs" "$TMP/root"

# dmsetup and the libraries it needs that are not libc (libc, libm and ld.so come from the host by ldd).
DMPKGS=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
	--no-replaces --no-enhances --no-pre-depends dmsetup 2>/dev/null |
	grep -v '^ ' | grep -E '^(dmsetup|lib)' | grep -v -E '^(libc6|libgcc-s1)$' | sort -u | tr '\n' ' ')
[ -n "$DMPKGS" ] || die "apt-cache cannot resolve dmsetup's dependencies; run 'apt-get update' and retry"

say "downloading $KPKG $DMPKGS(apt-get download; nothing is installed)"
t0=$(date +%s)
(cd "$TMP/debs" && apt-get download -q "$KPKG" $DMPKGS) >"$TMP/download.log" 2>&1 || {
	cat "$TMP/download.log" >&2
	die "apt-get download failed; run 'apt-get update' and retry (this needs the Debian mirror)"
}
say "downloaded $(du -sh "$TMP/debs" | cut -f1) in $(($(date +%s) - t0)) s"

say "unpacking vmlinuz and the dm, loop and virtio modules from $KPKG"
# Only what is needed: GNU tar --wildcards lets '*' match '/', so */modules/* covers both
# /lib/modules (bookworm) and /usr/lib/modules (merged-/usr kernels).
set +e
dpkg-deb --fsys-tarfile "$TMP"/debs/${KPKG}_*.deb | tar -x -C "$TMP/root" --wildcards \
	'./boot/vmlinuz-*' \
	'*/modules/*/kernel/drivers/md/dm-*' \
	'*/modules/*/kernel/drivers/block/loop.ko*' \
	'*/modules/*/kernel/drivers/block/virtio_blk.ko*' \
	'*/modules/*/kernel/drivers/virtio/virtio*.ko*' \
	'*/modules/*/modules.builtin' 2>"$TMP/untar.log"
set -e
# A pattern that matched nothing makes tar exit 2 (merged /usr or not); what matters is below.
VMLINUZ=$(find "$TMP/root/boot" -name 'vmlinuz-*' 2>/dev/null | head -1)
[ -n "$VMLINUZ" ] || { cat "$TMP/untar.log" >&2; die "no vmlinuz in $KPKG"; }
KDIR=$(find "$TMP/root" -type d -path '*/modules/*/kernel' | head -1)
[ -n "$KDIR" ] || { cat "$TMP/untar.log" >&2; die "no modules directory in $KPKG"; }

for d in "$TMP"/debs/*.deb; do
	case $d in */${KPKG}_*) continue ;; esac
	dpkg-deb -x "$d" "$TMP/root"
done

# ---- 4. base initramfs ------------------------------------------------------------------------
B=$TMP/base
mkdir -p "$B/bin" "$B/sbin" "$B/lib/modules" "$B/lib64" "$B/lib/x86_64-linux-gnu" "$B/etc" \
	"$B/proc" "$B/sys" "$B/dev" "$B/run" "$B/tmp" "$B/out" "$B/usr/bin" "$B/usr/sbin"

say "initramfs: busybox and its applet links"
cp /bin/busybox "$B/bin/busybox"
for a in $(/bin/busybox --list); do
	[ -e "$B/bin/$a" ] || ln -s busybox "$B/bin/$a"
done

say "initramfs: modules (decompressed, flat in /lib/modules)"
nmod=0
for f in $(find "$KDIR/drivers/md" "$KDIR/drivers/block" "$KDIR/drivers/virtio" -maxdepth 1 -name '*.ko*' | sort); do
	base=$(basename "$f")
	case $base in
	*.ko) cp "$f" "$B/lib/modules/$base" ;;
	*.ko.xz) command -v xz >/dev/null || die "$base is xz-compressed: apt-get install xz-utils"
		xz -dc "$f" >"$B/lib/modules/${base%.xz}" ;;
	*.ko.zst) command -v zstd >/dev/null || die "$base is zstd-compressed: apt-get install zstd"
		zstd -qdc "$f" >"$B/lib/modules/${base%.zst}" ;;
	*.ko.gz) gzip -dc "$f" >"$B/lib/modules/${base%.gz}" ;;
	*) continue ;;
	esac
	nmod=$((nmod + 1))
done
for m in dm-mod dm-log dm-region-hash dm-mirror dm-log-userspace dm-flakey dm-delay loop virtio_blk; do
	[ -f "$B/lib/modules/$m.ko" ] || die "module $m.ko is not in $KPKG (is it built in? then drop it from this list)"
done
BUILTIN=$(find "$TMP/root" -name modules.builtin | head -1)
[ -n "$BUILTIN" ] && cp "$BUILTIN" "$B/lib/modules/modules.builtin"
say "  $nmod modules, $(du -sh "$B/lib/modules" | cut -f1)"

say "initramfs: dmsetup and its libraries (ldd)"
DMSETUP=
for p in "$TMP/root/sbin/dmsetup" "$TMP/root/usr/sbin/dmsetup"; do [ -x "$p" ] && DMSETUP=$p && break; done
[ -n "$DMSETUP" ] || die "dmsetup not found in the dmsetup package"
cp "$DMSETUP" "$B/sbin/dmsetup"
LIBPATH=$TMP/root/lib/x86_64-linux-gnu:$TMP/root/usr/lib/x86_64-linux-gnu
if LD_LIBRARY_PATH=$LIBPATH ldd "$DMSETUP" | grep -q 'not found'; then
	LD_LIBRARY_PATH=$LIBPATH ldd "$DMSETUP" >&2
	die "dmsetup needs a library that was not downloaded (above: 'not found'); add its package to this script"
fi
for l in $(LD_LIBRARY_PATH=$LIBPATH ldd "$DMSETUP" | awk '/=>/{print $3} /ld-linux/{print $1}'); do
	case $l in
	*/ld-linux*) cp -L "$l" "$B/lib64/" ;;
	*) cp -L "$l" "$B/lib/x86_64-linux-gnu/" ;;
	esac
done

{
	echo "kernel_package=$KPKG"
	echo "kernel_version=$KV"
	echo "packages=$(cd "$TMP/debs" && ls | tr '\n' ' ')"
	echo "built=$(date -u +%FT%TZ)"
} >"$B/etc/dlog-vm-base"

say "initramfs: packing (cpio newc, gzip -1)"
mkdir -p "$DIR"
(cd "$B" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 -n) >"$DIR/initrd-base.cpio.gz.tmp"
mv "$DIR/initrd-base.cpio.gz.tmp" "$DIR/initrd-base.cpio.gz"
cp "$VMLINUZ" "$DIR/vmlinuz"
cp "$B/etc/dlog-vm-base" "$DIR/manifest.txt"
(cd "$B/lib/modules" && ls) >"$DIR/modules.txt"
echo "$KPKG $(cd "$TMP/debs" && ls ${KPKG}_*.deb | sed 's/.*_\(.*\)_.*/\1/')" >"$DIR/.complete"
echo "$KV" >"$CACHE/current"
say "done: $DIR/vmlinuz ($(du -h "$DIR/vmlinuz" | cut -f1)), $DIR/initrd-base.cpio.gz ($(du -h "$DIR/initrd-base.cpio.gz" | cut -f1))"
