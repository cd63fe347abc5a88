#!/bin/sh
# scripts/vm/cmirrord.sh: LVM2's cmirrord for the benchmark guest (make vmbench, issue #15 item 3),
# built once per cache from Debian's lvm2 source package into build/vm/cmirrord/root/:
#
#   - the source: a deb-src entry for the host's Debian suite in a private apt directory (the host's
#     own apt configuration is left alone), apt-get update of that list only, apt-get source
#     --download-only lvm2, dpkg-source -x;
#   - the build: ./configure --enable-cmirrord (libaio, readline, selinux, udev, systemd and the
#     LVM tool's optional parts off: only libdevmapper and cmirrord are built), make device-mapper,
#     make -C daemons/cmirrord. It needs gcc, make, pkg-config and libcpg-dev, libcorosync-common-dev
#     (make cluster-deps installs them);
#   - the guest tree: /usr/sbin/cmirrord and every library ldd names for it (the in-tree
#     libdevmapper.so.1.02 included) in /lib/x86_64-linux-gnu. corosync itself comes from
#     scripts/vm/cluster-deps.sh's archive, which make vmbench adds too.
#
# On failure the reason goes to build/vm/cmirrord/unavailable and the benchmark runs without the
# cmirrord rows, saying why. rm -r build/vm/cmirrord to retry. Environment: DLOG_VM_CACHE.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${DLOG_VM_CACHE:-$ROOT/build/vm}
DIR=$CACHE/cmirrord
say() { printf 'cmirrord: %s\n' "$*"; }

. "$ROOT/scripts/vm/optional.sh"
optional_begin

for t in apt-get dpkg-source gcc make pkg-config ldd; do
	command -v "$t" >/dev/null || unavailable "$t is not installed on the host"
done
pkg-config --exists libcpg || unavailable "libcpg-dev is not installed on the host (make cluster-deps)"

SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$SUITE" ] || unavailable "cannot tell the host's Debian suite from /etc/os-release"
mkdir -p "$TMP/apt/parts" "$TMP/apt/lists/partial" "$TMP/src"
cat >"$TMP/apt/parts/lvm2-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT="-q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$TMP/apt/parts -o Dir::State::Lists=$TMP/apt/lists"
say "apt-get update of a private deb-src list ($SUITE)"
# shellcheck disable=SC2086
apt-get $APT update >"$TMP/update.log" 2>&1 || { cat "$TMP/update.log" >&2; unavailable "apt-get update of the deb-src list failed"; }
say "apt-get source --download-only lvm2"
# shellcheck disable=SC2086
(cd "$TMP/src" && apt-get $APT source --download-only lvm2) >"$TMP/source.log" 2>&1 ||
	{ cat "$TMP/source.log" >&2; unavailable "apt-get source lvm2 failed"; }
DSC=$(ls "$TMP"/src/lvm2_*.dsc | head -1)
(cd "$TMP/src" && dpkg-source -x "$DSC" lvm2) >"$TMP/extract.log" 2>&1 ||
	{ cat "$TMP/extract.log" >&2; unavailable "dpkg-source -x $DSC failed"; }
VER=$(basename "$DSC" .dsc | sed 's/^lvm2_//')
S=$TMP/src/lvm2
say "building cmirrord from lvm2 $VER (about a minute)"
(cd "$S" && ./configure --enable-cmirrord --disable-readline --disable-selinux --disable-udev_sync \
	--disable-blkid_wiping --disable-systemd-journal --disable-app-machineid \
	--with-thin=none --with-cache=none --with-vdo=none --with-writecache=none --with-integrity=none) \
	>"$TMP/configure.log" 2>&1 || { tail -20 "$TMP/configure.log" >&2; unavailable "lvm2 $VER: configure --enable-cmirrord failed"; }
(cd "$S" && make -j2 device-mapper && make -C daemons/cmirrord) >"$TMP/make.log" 2>&1 ||
	{ tail -20 "$TMP/make.log" >&2; unavailable "lvm2 $VER: make of libdevmapper and cmirrord failed"; }

R=$TMP/root
mkdir -p "$R/usr/sbin" "$R/lib/x86_64-linux-gnu"
cp "$S/daemons/cmirrord/cmirrord" "$R/usr/sbin/"
cp -L "$S/libdm/ioctl/libdevmapper.so.1.02" "$R/lib/x86_64-linux-gnu/"
for l in $(LD_LIBRARY_PATH="$S/libdm/ioctl" ldd "$S/daemons/cmirrord/cmirrord" | awk '/=>/{print $3}'); do
	cp -L "$l" "$R/lib/x86_64-linux-gnu/"
done
if LD_LIBRARY_PATH="$S/libdm/ioctl" ldd "$S/daemons/cmirrord/cmirrord" | grep -q 'not found'; then
	unavailable "cmirrord from lvm2 $VER needs a library that is missing on the host"
fi
rm -rf "$DIR/root"
mv "$R" "$DIR/root"
echo "lvm2 $VER (Debian source), corosync $(dpkg-query -W -f '${Version}' libcpg-dev 2>/dev/null || echo unknown)" >"$DIR/.complete"
say "done: $DIR/root ($(cat "$DIR/.complete"))"
