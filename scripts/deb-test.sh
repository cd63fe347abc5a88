#!/bin/sh
# deb-test.sh DEB: check a dlogd .deb (make deb-test). Its metadata and file
# list; then the package unpacked into a scratch root and its dlogd run
# from there: --version names the package version, serve starts on a unix
# transport (the netlink connector needs root and the module), status
# answers through the control socket beside the pidfile, SIGTERM stops it.
# The unit in the package is checked with systemd-analyze verify against
# the unpacked binary. Exit 0 when all holds.
set -eu
deb=$1
fail() { echo "!! deb-test: $*" >&2; exit 1; }

info=$(dpkg-deb --info "$deb")
echo "$info" | grep -q '^ Package: dlogd$' || fail "no Package: dlogd"
version=$(dpkg-deb --field "$deb" Version)
[ -n "$version" ] || fail "no Version"

files=$(dpkg-deb --contents "$deb" | awk '{print $1, $2, $NF}')
for want in \
	"-rwxr-xr-x root/root ./usr/sbin/dlogd" \
	"-rw-r--r-- root/root ./usr/share/man/man8/dlogd.8.gz" \
	"-rw-r--r-- root/root ./lib/systemd/system/dlogd.service" \
	"-rw-r--r-- root/root ./usr/share/bash-completion/completions/dlogd" \
	"-rw-r--r-- root/root ./usr/share/doc/dlogd/README.md"; do
	echo "$files" | grep -qxF -- "$want" || fail "missing or wrong mode/owner: $want
$files"
done

tmp=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
dpkg-deb --extract "$deb" "$tmp/root"
bin=$tmp/root/usr/sbin/dlogd
grep -q '^ExecStart=/usr/sbin/dlogd serve$' "$tmp/root/lib/systemd/system/dlogd.service" || fail "unit ExecStart= is not /usr/sbin/dlogd"

out=$("$bin" --version)
case $out in "dlogd $version ("*) ;; *) fail "--version says '$out', want dlogd $version";; esac

if command -v systemd-analyze >/dev/null; then
	sed "s|/usr/sbin/dlogd|$bin|" "$tmp/root/lib/systemd/system/dlogd.service" > "$tmp/dlogd.service"
	v=$(systemd-analyze verify --man=no "$tmp/dlogd.service" 2>&1) || fail "systemd-analyze: $v"
	[ -z "$v" ] || fail "systemd-analyze: $v"
fi

"$bin" serve --transport "unix:$tmp/dlogd.sock" --pidfile "$tmp/dlogd.pid" --no-mlock 2>"$tmp/stderr" &
pid=$!
i=0
until [ -s "$tmp/dlogd.pid" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "dlogd did not start: $(cat "$tmp/stderr")"
	kill -0 "$pid" 2>/dev/null || fail "dlogd exited: $(cat "$tmp/stderr")"
	sleep 0.1
done
st=$("$bin" status --pidfile "$tmp/dlogd.pid") || fail "status: $st"
case $st in "dlogd $version, pid $pid on unix:"*) ;; *) fail "status says: $st";; esac
kill -TERM "$pid"
wait "$pid" || fail "dlogd exited $? on SIGTERM: $(cat "$tmp/stderr")"
pid=
echo "deb-test: $deb ($version) installs its files and its dlogd serves and stops"
