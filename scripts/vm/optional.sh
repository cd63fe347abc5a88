# scripts/vm/optional.sh: sourced by the scripts that prepare an optional part of a VM guest
# (fio.sh, cmirrord.sh). The caller sets DIR (the part's cache directory) and defines say.

# optional_begin exits 0 when DIR holds a finished build or the recorded reason the part is
# unavailable; otherwise it makes DIR and a temporary directory TMP inside it, removed at exit.
optional_begin() {
	if [ -f "$DIR/.complete" ]; then
		say "cached: $DIR/root ($(cat "$DIR/.complete"))"
		exit 0
	fi
	if [ -f "$DIR/unavailable" ]; then
		say "known unavailable: $(cat "$DIR/unavailable") (rm -r $DIR to retry)"
		exit 0
	fi
	mkdir -p "$DIR"
	TMP=$(mktemp -d "$DIR/.tmp.XXXXXX")
	trap 'rm -rf "$TMP"' EXIT INT TERM
}

# unavailable REASON records why the part is left out and exits 0: the benchmark runs without it
# and says why.
unavailable() {
	say "left out: $*"
	echo "$*" >"$DIR/unavailable"
	exit 0
}
