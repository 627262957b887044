#!/usr/bin/env bats
# libcmr as an installed library (mk/lib.am, docs/library.md): `make install`
# into a scratch DESTDIR, then what a user of the installed tree sees: the
# shared library and its exported symbols, the headers, cmr.pc, every
# examples/*.c compiled and linked with `pkg-config --cflags --libs cmr`
# alone, and `man cmr-encode`.
load helpers

setup_file() {
    : "${CMR_BUILDDIR:?make check sets CMR_BUILDDIR}"
    export DEST="$BATS_FILE_TMPDIR/dest"
    # a make of its own, not a job of the make check that runs this file
    (unset MAKEFLAGS MFLAGS MAKELEVEL; make -s -C "$CMR_BUILDDIR" install DESTDIR="$DEST") \
        >"$BATS_FILE_TMPDIR/install.log" 2>&1 || { cat "$BATS_FILE_TMPDIR/install.log" >&2; return 1; }
    PC=$(find "$DEST" -name cmr.pc -path '*/pkgconfig/*' | head -n 1)
    export PC
    export PKG_CONFIG_PATH="${PC%/cmr.pc}" PKG_CONFIG_SYSROOT_DIR="$DEST"
    export PKG_CONFIG="${CMR_PKG_CONFIG:-pkg-config}" CC="${CMR_CC:-cc}"
    # pkg-config puts the sysroot before the paths of --variable too (pkgconf) or not
    local v
    v=$($PKG_CONFIG --variable=libdir cmr) && LIBDIR=$DEST${v#"$DEST"}
    v=$($PKG_CONFIG --variable=includedir cmr) && INCDIR=$DEST${v#"$DEST"}/cmr
    export LIBDIR INCDIR
}

@test "make install puts the library, cmr.pc, the headers, the programs and the man pages in place" {
    [ -n "$PC" ] && [ -s "$PC" ]
    [ -e "$LIBDIR/libcmr.so" ]
    [ -e "$LIBDIR/libcmr.so.${CMR_SOVERSION:?}" ]
    [ -f "$INCDIR/cmr.h" ]
    local p
    for p in ${CMR_PROGRAMS:?}; do
        [ -n "$(find "$DEST" -path "*/bin/$p" -type f)" ] || { echo "$p not installed" >&2; return 1; }
        [ -n "$(find "$DEST" -path "*/man1/$p.1")" ] || { echo "$p.1 not installed" >&2; return 1; }
    done
    # programs link the shared library (none carries a copy of its own)
    ldd "$(find "$DEST" -path '*/bin/cmr-encode' -type f)" | grep -q 'libcmr\.so\.'
}

@test "pkg-config --cflags --libs cmr names the installed tree" {
    run "$PKG_CONFIG" --cflags cmr
    [ "$status" -eq 0 ]
    [[ "$output" == *"-I$DEST"*"/cmr"* ]]
    run "$PKG_CONFIG" --libs cmr
    [ "$status" -eq 0 ]
    [[ "$output" == *"-lcmr"* ]]
    run "$PKG_CONFIG" --modversion cmr
    [ "$output" = "${CMR_VERSION:?}" ]
}

@test "the library exports only cmr_ symbols: the public API as CMR_<soversion>, the rest as private" {
    local so="$LIBDIR/libcmr.so.$CMR_SOVERSION"
    nm -D --defined-only --with-symbol-versions "$so" | awk '$2 != "A" { print $3 }' >"$BATS_TEST_TMPDIR/syms"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/syms")" -gt 100 ]
    run ! grep -v '^cmr_' "$BATS_TEST_TMPDIR/syms"
    grep -q '@' "$BATS_TEST_TMPDIR/syms" || skip "no symbol versions (not GNU ld)"
    # public: model load, frames, errors, the mel front end
    local s
    for s in cmr_model_load cmr_model_forward cmr_reader_new cmr_writer_put cmr_frame_make_tensor \
        cmr_error_text cmr_strerror cmr_mel_new cmr_rng_seed; do
        grep -qx "$s@@CMR_$CMR_SOVERSION" "$BATS_TEST_TMPDIR/syms" || { echo "$s is not public" >&2; return 1; }
    done
    # internal: the kernels, training, evaluation
    for s in cmr_conv2d_forward cmr_gemm_fixed cmr_csv_next; do
        grep -q "^$s@" "$BATS_TEST_TMPDIR/syms" || continue
        grep -qx "$s@@CMR_PRIVATE_$CMR_VERSION" "$BATS_TEST_TMPDIR/syms" || { echo "$s is public" >&2; return 1; }
    done
    # every public function is defined
    [ "$(grep -c "@@CMR_$CMR_SOVERSION\$" "$BATS_TEST_TMPDIR/syms")" -gt 50 ]
}

@test "every installed header compiles on its own, with the installed tree alone" {
    local inc=$INCDIR h n=0
    while read -r h; do
        printf '#include <%s>\nint main(void) { return 0; }\n' "${h#"$inc"/}" >"$BATS_TEST_TMPDIR/h.c"
        # shellcheck disable=SC2046
        $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only $($PKG_CONFIG --cflags cmr) "$BATS_TEST_TMPDIR/h.c" ||
            { echo "$h does not compile on its own" >&2; return 1; }
        n=$((n + 1))
    done < <(find "$inc" -name '*.h')
    [ "$n" -ge 6 ]
    # and only the public headers are there: internal ones stay in lib/
    [ ! -e "$inc/train.h" ] && [ ! -e "$inc/util/json.h" ] && [ ! -e "$inc/nn/vec.h" ]
}

@test "every examples/*.c builds with pkg-config against the installed library" {
    local c n=0 pkgs
    for c in "$CMR_SRCDIR"/examples/*.c; do
        [ -e "$c" ] || continue
        # an example that reads audio files names its other pkg-config
        # packages in a " * pkg-config: cmr sndfile" line
        pkgs=$(sed -n 's/^ \* pkg-config: //p' "$c")
        # shellcheck disable=SC2046,SC2086
        $CC -std=c11 -Wall -Wextra -Werror $($PKG_CONFIG --cflags ${pkgs:-cmr}) "$c" -o "$BATS_TEST_TMPDIR/$(basename "$c" .c)" \
            $($PKG_CONFIG --libs ${pkgs:-cmr}) -lm || { echo "$c does not build" >&2; return 1; }
        # it runs on the installed library, not the build tree's
        LD_LIBRARY_PATH="$LIBDIR" ldd "$BATS_TEST_TMPDIR/$(basename "$c" .c)" | grep -q "$LIBDIR/libcmr\.so"
        n=$((n + 1))
    done
    [ "$n" -ge 1 ]
}

@test "examples/version runs on the installed library: prints its version, writes an embedding stream" {
    # shellcheck disable=SC2046
    $CC -std=c11 $($PKG_CONFIG --cflags cmr) "$CMR_SRCDIR/examples/version.c" -o "$BATS_TEST_TMPDIR/version" \
        $($PKG_CONFIG --libs cmr) -lm
    LD_LIBRARY_PATH="$LIBDIR" "$BATS_TEST_TMPDIR/version" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"
    grep -qx "libcmr ${CMR_VERSION:?}, frame format 1" "$BATS_TEST_TMPDIR/err"
    grep -q '^encoder model, 128-d embedding' "$BATS_TEST_TMPDIR/err"
    run cmr dump "$BATS_TEST_TMPDIR/out"
    [ "$status" -eq 0 ]
    [[ "$output" == *embedding*128* ]]
    # a model file given on the command line is loaded; a bad one is one line on stderr, status 1
    cmr model init --kind multi --width 0.125 --seed 3 "$BATS_TEST_TMPDIR/m.cmr"
    LD_LIBRARY_PATH="$LIBDIR" "$BATS_TEST_TMPDIR/version" "$BATS_TEST_TMPDIR/m.cmr" 2>"$BATS_TEST_TMPDIR/err" >/dev/null
    grep -q '^multi model, 640-d embedding' "$BATS_TEST_TMPDIR/err"
    run -1 --separate-stderr env LD_LIBRARY_PATH="$LIBDIR" "$BATS_TEST_TMPDIR/version" "$BATS_TEST_TMPDIR/nothing.cmr"
    [ "${#stderr_lines[@]}" -eq 2 ]
    [[ "${stderr_lines[1]}" == "version: $BATS_TEST_TMPDIR/nothing.cmr: "* ]]
    [ -z "$output" ]
}

@test "man cmr-encode shows the installed page" {
    command -v man >/dev/null || skip "man not found (apt-get install man-db)"
    local mandir
    mandir=$(dirname "$(dirname "$(find "$DEST" -path '*/man1/cmr-encode.1' | head -n 1)")")
    run env LC_ALL=C MANWIDTH=100 man -M "$mandir" cmr-encode
    [ "$status" -eq 0 ]
    [[ "$output" == *"cmr-encode - turn log-mel segments into embeddings"* ]]
    [[ "$output" == *"--model"* ]]
    [[ "$output" == *"EXIT STATUS"* ]]
}
