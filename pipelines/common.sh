# shellcheck shell=bash
# Sourced by the pipeline scripts in this folder: which cmr programs to run,
# progress lines on stderr, and writing a file under a temporary name.
set -euo pipefail

# cmr NAME ARGS...: $CMR_BINDIR/cmr-NAME when CMR_BINDIR is set, else cmr-NAME from PATH
cmr() {
    local name=$1
    shift
    "${CMR_BINDIR:+$CMR_BINDIR/}cmr-$name" "$@"
}

# say MESSAGE: one progress line on stderr, prefixed by the script's name
say() { printf '[%s %3ds] %s\n' "$(basename "$0" .sh)" "$SECONDS" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# need_file FILE: stop with a message when FILE is not a readable, non-empty file
need_file() { [ -s "$1" ] || die "$1: no such file (or empty)"; }

# TMP_OUT is removed if the script stops before renaming it
TMP_OUT=
trap '[ -z "$TMP_OUT" ] || rm -f -- "$TMP_OUT"' EXIT
# tmp_for FILE: a temporary name beside FILE, on the same file system (so mv is atomic)
tmp_for() { TMP_OUT="$1.tmp.$$"; mkdir -p -- "$(dirname -- "$1")"; }
# commit FILE: rename the temporary file to FILE
commit() { mv -f -- "$TMP_OUT" "$1"; TMP_OUT=; }
