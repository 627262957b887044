#!/usr/bin/env bats
# Model files whose checksum is valid but whose values are not: every loader
# (cmr-encode, cmr-model export and info, cmr-train --init/--resume/--eval)
# refuses a non-finite weight the way cmr-model import does (lib/model.c
# cmr_model_check_values).
load helpers

MKSEG="$CMR_BUILDDIR/tests/unit/mk-segments"

# nan_model IN OUT: IN with its last float (fc.bias[127] of an encoder saved
# without Adam's state) set to NaN, and the CRC-32 recomputed (gzip's trailer
# holds the same CRC-32 as the model file's)
nan_model() {
    local len
    len=$(stat -c %s "$1")
    cp "$1" "$2"
    printf '\000\000\300\177' | dd of="$2" bs=1 seek=$((len - 8)) conv=notrunc status=none
    head -c $((len - 4)) "$2" | gzip -c | tail -c 8 | head -c 4 |
        dd of="$2" bs=1 seek=$((len - 4)) conv=notrunc status=none
}

setup() {
    setup_tmp
    cmr model init --kind encoder --width 0.0625 --seed 1 "$TMP/m.cmr"
    nan_model "$TMP/m.cmr" "$TMP/nan.cmr"
    # the damage is in the values, not the checksum: restoring the bytes gives the model back
    cmp -s "$TMP/m.cmr" "$TMP/nan.cmr" && false
    [ "$(stat -c %s "$TMP/nan.cmr")" = "$(stat -c %s "$TMP/m.cmr")" ]
    MSG="$TMP/nan.cmr: tensor 'fc.bias' holds NaN at element 127"
}

@test "model values: cmr-model export and info refuse a NaN weight with a valid checksum" {
    run -1 --separate-stderr cmr model export "$TMP/nan.cmr" "$TMP/x.st"
    [ "$stderr" = "cmr-model: $MSG" ]
    [ ! -e "$TMP/x.st" ]
    run -1 --separate-stderr cmr model info "$TMP/nan.cmr"
    [ "$stderr" = "cmr-model: $MSG" ]
    # the same weights through import were already refused: now both say so
    cmr model export "$TMP/m.cmr" "$TMP/ok.st"
    run -0 cmr model info "$TMP/m.cmr"
}

@test "model values: cmr-encode refuses the model before writing an embedding" {
    "$MKSEG" --tracks 1 --segments 2 > "$TMP/seg.cmrf"
    run -1 --separate-stderr cmr encode --model "$TMP/nan.cmr" "$TMP/seg.cmrf"
    [ "$stderr" = "cmr-encode: $MSG" ]
    [ -z "$output" ]
    cmr encode --model "$TMP/m.cmr" "$TMP/seg.cmrf" > /dev/null
}

@test "model values: cmr-train --init, --resume and --eval refuse it" {
    "$CMR_BUILDDIR/tests/tools/cmr-mkpairs" --tracks 4 --epochs 1 > "$TMP/p.cmr"
    run -1 --separate-stderr cmr train --width 0.0625 --batch 4 -q --init "$TMP/nan.cmr" --out "$TMP/o.cmr" "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: $MSG" ]
    run -1 --separate-stderr cmr train --width 0.0625 --batch 4 -q --resume "$TMP/nan.cmr" --out "$TMP/nan.cmr" "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: $MSG" ]
    run -1 --separate-stderr cmr train --eval "$TMP/nan.cmr" "$TMP/p.cmr"
    [ "$stderr" = "cmr-train: $MSG" ]
    [ ! -e "$TMP/o.cmr" ]
}
