# Shared helpers for cmr's Bats tests: `load helpers` at the top of each file.
# Every call to a cmr program goes through cmr(), which runs the built binary
# from $CMR_BINDIR, never one found on $PATH.
bats_require_minimum_version 1.5.0

: "${CMR_BINDIR:?CMR_BINDIR must point at the built filters (make check sets it)}"
# ASan builds: a leak report after an exit through cli_die() would break the exact stderr checks
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
: "${CMR_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"

# cmr NAME [ARGS...]: runs $CMR_BINDIR/cmr-NAME
cmr() {
    local name=$1
    shift
    "$CMR_BINDIR/cmr-$name" "$@"
}

# mk_sine FILE FREQ SECONDS [RATE] [CHANNELS]: a sine at -6 dBFS, 16-bit, type from FILE's extension
mk_sine() {
    local file=$1 freq=$2 secs=$3 rate=${4:-16000} ch=${5:-1}
    sox -q -n -r "$rate" -c "$ch" -b 16 "$file" synth "$secs" sine "$freq" vol 0.5
}

# mk_noise FILE SECONDS [RATE] [CHANNELS]: white noise at -12 dBFS (sox -R: the same every run)
mk_noise() {
    local file=$1 secs=$2 rate=${3:-16000} ch=${4:-1}
    sox -q -R -n -r "$rate" -c "$ch" -b 16 "$file" synth "$secs" whitenoise vol 0.25
}

# mk_music FILE SECONDS [RATE]: a few notes and a noise burst (something mel-rich)
mk_music() {
    local file=$1 secs=$2 rate=${3:-16000}
    sox -q -R -n -r "$rate" -c 1 -b 16 "$file" synth "$secs" pluck C3 pluck E3 pluck G3 pluck C4 \
        remix - fade 0 "$secs" 0.1 tremolo 5 40 vol 0.5
}

setup_tmp() {
    TMP=$(mktemp -d "${BATS_TMPDIR:-/tmp}/cmr-test.XXXXXX")
}

teardown_tmp() {
    [ -n "${TMP:-}" ] && rm -rf "$TMP"
}

setup() { setup_tmp; }
teardown() { teardown_tmp; }

# assert_stderr_names PROG: stderr's first line starts with "cmr-PROG: "
assert_error_line() {
    local prog=$1
    [[ "${stderr:-$output}" == "cmr-$prog: "* ]] || {
        echo "expected an error line starting with 'cmr-$prog: ', got: ${stderr:-$output}" >&2
        return 1
    }
}
