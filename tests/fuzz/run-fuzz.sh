#!/bin/sh
# make fuzz: builds every libFuzzer target (tests/fuzz/fuzz-*.c) with clang +
# libFuzzer + ASan/UBSan against lib/ compiled the same way, and runs each for
# SECONDS, memory bounded at 512 MB, starting from tests/fuzz/seeds/TARGET/.
# Usage: run-fuzz.sh SRCDIR BUILDDIR SECONDS [TARGET...]   (default: all;
# SECONDS 0: build only)
# A crash, leak, timeout or out-of-memory leaves the input in
# BUILDDIR/tests/fuzz/TARGET-crash-* (etc.) and makes the run fail.
set -eu
src=$1 build=$2 secs=${3:-60}
shift 2
[ $# -eq 0 ] || shift
command -v clang >/dev/null || { echo "make fuzz needs clang: apt-get install clang" >&2; exit 2; }
out=$build/tests/fuzz
mkdir -p "$out/obj"
pc() { pkg-config "$@" msgpack-c 2>/dev/null || pkg-config "$@" msgpack; }
cflags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
 -I$src/lib -I$build $(pc --cflags) $(pkg-config --cflags fftw3f soxr sndfile zlib)
 $(pkg-config --cflags openblas 2>/dev/null || pkg-config --cflags cblas)"
libs="$(pc --libs) $(pkg-config --libs fftw3f soxr sndfile zlib)
 $(pkg-config --libs openblas 2>/dev/null || pkg-config --libs cblas) -lpthread -lm"

# lib/ (all of it but the MPI part), instrumented; rebuilt when a source or
# header is newer than its object
# shellcheck disable=SC2012
newest_h=$(ls -t "$src"/lib/*.h "$src"/lib/*/*.h | head -n 1)
objs=
for c in "$src"/lib/*.c "$src"/lib/*/*.c; do
    case $c in */dist_mpi.c) continue ;; esac
    o=$out/obj/$(echo "${c#"$src"/lib/}" | tr / _ | sed 's/\.c$/.o/')
    if [ ! -f "$o" ] || [ -n "$(find "$c" "$newest_h" -newer "$o")" ]; then
        # shellcheck disable=SC2086
        clang $cflags -c "$c" -o "$o"
    fi
    objs="$objs $o"
done
# an archive, so that each target links only the objects it uses (no sox, liblinear)
rm -f "$out/libcmr-fuzz.a"
# shellcheck disable=SC2086
ar rcs "$out/libcmr-fuzz.a" $objs

if [ $# -eq 0 ]; then
    set --
    for f in "$src"/tests/fuzz/fuzz-*.c; do
        t=$(basename "$f" .c)
        set -- "$@" "${t#fuzz-}"
    done
fi
failed=
for t in "$@"; do
    # shellcheck disable=SC2086
    clang $cflags -fsanitize=fuzzer "$src/tests/fuzz/fuzz-$t.c" "$out/libcmr-fuzz.a" $libs -o "$out/fuzz-$t"
    [ "$secs" -gt 0 ] || continue
    mkdir -p "$out/corpus/$t"
    cp "$src/tests/fuzz/seeds/$t"/* "$out/corpus/$t/" 2>/dev/null || true
    echo "fuzz-$t: $secs s"
    if ! ASAN_OPTIONS=allocator_may_return_null=1 \
        "$out/fuzz-$t" -max_total_time="$secs" -rss_limit_mb=512 -max_len=65536 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$out/$t-" "$out/corpus/$t"; then
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "make fuzz: failed:$failed (inputs in $out)" >&2
    exit 1
fi
