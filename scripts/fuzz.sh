#!/usr/bin/env bash
# Runs every native fuzz target of the module for FUZZTIME each, then copies
# the inputs the fuzzer found interesting from Go's cache into the package's
# testdata/fuzz/<Target>/ so that they are committed and replayed by every
# `go test` (a crasher lands there by itself and fails the tests until fixed).
#
#   scripts/fuzz.sh [FUZZTIME] [package pattern...]     FUZZTIME: 2m, 10s, 100000x
#   KEEP_CORPUS=0 scripts/fuzz.sh ...                    fuzz without keeping new entries (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-2m}
shift || true
pkgs=("${@:-./...}")
cache=$(go env GOCACHE)/fuzz
total=0
start=$(date +%s)
for pkg in $(go list "${pkgs[@]}"); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== fuzz $pkg $target for $fuzztime"
		out=$(mktemp)
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" 2>&1 | tee "$out"; then
			# The fuzz engine sometimes ends a short run with "context deadline
			# exceeded" while a worker is still busy: no input failed, the
			# clock ran out. A real failure names its input in testdata.
			if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
				echo "   (run ended by the clock while a worker was busy; no input failed)"
			else
				rm -f "$out"
				exit 1
			fi
		fi
		rm -f "$out"
		src="$cache/$pkg/$target"
		dst="$dir/testdata/fuzz/$target"
		if [ "${KEEP_CORPUS:-1}" = 1 ] && [ -d "$src" ]; then
			mkdir -p "$dst"
			n=0
			for f in "$src"/*; do
				[ -e "$dst/$(basename "$f")" ] && continue
				cp "$f" "$dst/" && n=$((n + 1))
			done
			echo "   $n new corpus entries kept in ${dst#$PWD/}"
			total=$((total + n))
		fi
	done
done
echo "== fuzzing done in $(( $(date +%s) - start )) s; $total new corpus entries (commit them)"
