#!/bin/sh
# scripts/vm/fio.sh: Debian's fio and the shared libraries it needs, unpacked (not installed)
# for the benchmark guest, cached next to the kernel: build/vm/<kernel-version>/fio/root/.
#
#   scripts/vm/fio.sh        (make vmbench runs it; optional: the benchmark falls back to dd)
#
# fio links against ceph, gluster, nbd and pmem client libraries. Their packages are found
# in rounds: fio's direct dependencies first, then, for every library ldd still cannot
# resolve, the package Debian's naming policy gives its soname (libfoo.so.N -> libfooN).
# Whatever cannot be resolved leaves fio out, with the reason in fio/unavailable.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${DLOG_VM_CACHE:-$ROOT/build/vm}
say() { printf 'fio: %s\n' "$*"; }

[ -f "$CACHE/current" ] || { say "no kernel cache: run make deps first"; exit 1; }
KV=$(cat "$CACHE/current")
DIR=$CACHE/$KV/fio
. "$ROOT/scripts/vm/optional.sh"
optional_begin
mkdir -p "$TMP/debs" "$TMP/unpacked"

fetch() { # packages...
	(cd "$TMP/debs" && apt-get download -q "$@") >>"$TMP/download.log" 2>&1 || return 1
	for d in "$TMP"/debs/*.deb; do
		[ -f "$d.done" ] && continue
		dpkg-deb -x "$d" "$TMP/unpacked" && touch "$d.done"
	done
}

LIBPATH=$TMP/unpacked/lib/x86_64-linux-gnu:$TMP/unpacked/usr/lib/x86_64-linux-gnu:$TMP/unpacked/usr/lib/x86_64-linux-gnu/ceph
missing() { LD_LIBRARY_PATH=$LIBPATH ldd "$TMP/unpacked/usr/bin/fio" 2>/dev/null | awk '/not found/{print $1}' | sort -u; }

DIRECT=$(apt-cache depends fio 2>/dev/null | awk '/Depends: lib/{print $2}' | grep -v -E '^(libc6|libgcc-s1)$' | sort -u | tr '\n' ' ')
say "downloading fio and its direct library dependencies: $DIRECT"
fetch fio $DIRECT || unavailable "apt-get download fio failed (see the Debian mirror)"
[ -x "$TMP/unpacked/usr/bin/fio" ] || unavailable "the fio package has no usr/bin/fio"

for round in 1 2 3 4 5 6; do
	libs=$(missing)
	[ -z "$libs" ] && break
	pkgs=
	for so in $libs; do
		# libfoo.so.N -> libfooN; libfoo2.so.1 -> libfoo2-1; libboost_thread.so.1.74.0 -> libboost-thread1.74.0
		base=${so%%.so*}
		ver=${so#*.so.}
		base=$(echo "$base" | tr '_' '-' | tr 'A-Z' 'a-z')
		case $base in *[0-9]) pkgs="$pkgs $base-$ver" ;; *) pkgs="$pkgs $base$ver" ;; esac
	done
	say "round $round: libraries still missing: $(echo $libs | tr '\n' ' '); trying packages:$pkgs"
	# shellcheck disable=SC2086
	fetch $pkgs || unavailable "cannot download one of:$pkgs (for $(echo $libs | tr '\n' ' '))"
done
libs=$(missing)
[ -z "$libs" ] || unavailable "libraries not resolved: $(echo $libs | tr '\n' ' ')"

# Only fio and the libraries it loads (not libc: the host's, as for dmsetup).
OUT=$TMP/root
mkdir -p "$OUT/usr/bin" "$OUT/usr/lib/x86_64-linux-gnu"
cp "$TMP/unpacked/usr/bin/fio" "$OUT/usr/bin/fio"
LD_LIBRARY_PATH=$LIBPATH ldd "$TMP/unpacked/usr/bin/fio" | awk '/=>/{print $3}' | while read -r l; do
	case $l in
	"$TMP"/unpacked/*) rel=${l#"$TMP"/unpacked/}; mkdir -p "$OUT/$(dirname "$rel")"; cp -L "$l" "$OUT/$rel" ;;
	*) ;; # libc and friends: in the base initramfs already, or copied from the host below
	esac
done
# Host libraries fio needs that the base initramfs may lack (dmsetup's set is small).
LD_LIBRARY_PATH=$LIBPATH ldd "$TMP/unpacked/usr/bin/fio" | awk '/=>/{print $3}' | grep -v "^$TMP" | while read -r l; do
	mkdir -p "$OUT/$(dirname "$l")"
	cp -L "$l" "$OUT/$l"
done
rm -rf "$DIR/root"
mv "$OUT" "$DIR/root"
echo "fio $(dpkg-deb -f "$TMP"/debs/fio_*.deb Version), $(find "$DIR/root" -type f | wc -l) files, $(du -sh "$DIR/root" | cut -f1)" >"$DIR/.complete"
say "done: $(cat "$DIR/.complete")"
