#!/bin/sh
# make fuzz: builds the frame reader with clang + libFuzzer + ASan/UBSan and
# runs it for a bounded time. Usage: run-fuzz.sh SRCDIR BUILDDIR SECONDS
set -eu
src=$1 build=$2 secs=${3:-60}
command -v clang >/dev/null || { echo "make fuzz needs clang: apt-get install clang" >&2; exit 2; }
out=$build/tests/fuzz
mkdir -p "$out/corpus"
# shellcheck disable=SC2046
clang -g -O1 -fsanitize=fuzzer,address,undefined -I"$src/lib" -I"$build" \
    "$src/tests/fuzz/fuzz-frame.c" "$src/lib/frame.c" "$src/lib/err.c" \
    $(pkg-config --cflags --libs msgpack-c 2>/dev/null || pkg-config --cflags --libs msgpack) \
    -o "$out/fuzz-frame"
cp "$src"/tests/fuzz/seeds/* "$out/corpus/" 2>/dev/null || true
ASAN_OPTIONS=allocator_may_return_null=1 \
    "$out/fuzz-frame" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 "$out/corpus"
