#!/usr/bin/env bats
# cmr-base, the model cmr-encode and cmrencode use when given none
# (lib/model_default.c; docs/models.md, "cmr-base"): --model > $CMR_MODEL >
# the installed $(pkgdatadir)/models/cmr-base.cmr. The tests use the committed
# model of the source tree through CMR_MODEL (nothing is installed).
load helpers

MKSEG="$CMR_BUILDDIR/tests/unit/mk-segments"
BASE="$CMR_SRCDIR/models/cmr-base.cmr"

setup() {
    setup_tmp
    unset CMR_MODEL
    cmr model init --kind encoder --width 0.0625 --seed 1 "$TMP/enc.cmr"
    "$MKSEG" --tracks 2 --segments 3 > "$TMP/seg.cmrf"
}

# the shape= of the first embedding frame of a stream
first_shape() {
    cmr dump -n 1 "$1" | sed -n 's/^tensor kind=embedding .* shape=\(\[[0-9]*]\).*/\1/p' | head -n 1
}

@test "the committed cmr-base: a multi-level model with its card, under 16 MB" {
    [ -s "$BASE" ]
    [ "$(stat -c %s "$BASE")" -le 16000000 ]
    run -0 --separate-stderr cmr model info "$BASE"
    [[ "$output" == *"kind        multi "* ]]
    [[ "$output" == *"meta        card.name = cmr-base"* ]]
    [[ "$output" == *"meta        card.data = "*"Debian 12 packages"* ]]
    [[ "$output" == *"meta        card.licences = "*"GPL"* ]]
    [[ "$output" == *"meta        card.derived = "*"derived from it"* ]]
    [[ "$output" == *"meta        card.training = seed "* ]]
    [[ "$output" == *"adam        "*"state none"* ]]
}

@test "cmr-encode without --model uses CMR_MODEL: the same bytes as --model" {
    CMR_MODEL="$BASE" "$CMR_BINDIR/cmr-encode" "$TMP/seg.cmrf" > "$TMP/env.cmrf"
    cmr encode --model "$BASE" "$TMP/seg.cmrf" > "$TMP/explicit.cmrf"
    cmp "$TMP/env.cmrf" "$TMP/explicit.cmrf"
    [ "$(first_shape "$TMP/env.cmrf")" = "[640]" ]
    run -0 cmr dump -n 1 "$TMP/env.cmrf"
    [[ "${lines[0]}" == *"cmr-encode{\"model\":\"$BASE\",\"kind\":\"multi\""* ]]
}

@test "an explicit --model wins over CMR_MODEL" {
    CMR_MODEL="$BASE" "$CMR_BINDIR/cmr-encode" --model "$TMP/enc.cmr" "$TMP/seg.cmrf" > "$TMP/out.cmrf"
    [ "$(first_shape "$TMP/out.cmrf")" = "[128]" ]
    # a CMR_MODEL that does not exist is not even looked at
    CMR_MODEL="$TMP/missing.cmr" "$CMR_BINDIR/cmr-encode" --model "$TMP/enc.cmr" "$TMP/seg.cmrf" > "$TMP/out2.cmrf"
    cmp "$TMP/out.cmrf" "$TMP/out2.cmrf"
}

@test "a bad CMR_MODEL is exit 1 naming the file; no model anywhere is exit 1 saying what was tried" {
    CMR_MODEL="$TMP/missing.cmr" run -1 --separate-stderr "$CMR_BINDIR/cmr-encode" "$TMP/seg.cmrf"
    [[ "$stderr" == "cmr-encode: $TMP/missing.cmr"* ]]
    [ -z "$output" ]
    installed=$(cmr encode --help | sed -n 's/^ *\(\/.*cmr-base\.cmr\)\]$/\1/p')
    [[ "$installed" == */models/cmr-base.cmr ]]
    [ ! -e "$installed" ] || skip "cmr-base is installed at $installed"
    run -1 --separate-stderr "$CMR_BINDIR/cmr-encode" "$TMP/seg.cmrf"
    [[ "$stderr" == "cmr-encode: no model given, CMR_MODEL unset, and $installed is not installed"* ]]
    [ -z "$output" ]
}
