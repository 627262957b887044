#!/bin/bash
# extract-shard.sh LIST OUTDIR I N [MODEL.cmr]
# Shard I of N of a corpus's features (docs/scaling.md): the tracks i of LIST
# with i % N == I (cmr-decode --shard I/N), one "summary" frame per track as
# features.sh makes them (MODEL: the encoder's embeddings, mean and std over
# the track; without: the MFCC baseline), into OUTDIR/part-IIIII-of-NNNNN.cmr.
# The N parts are independent (any order, any machine); concatenated they are
# one valid stream holding every track once:
#     cat OUTDIR/part-*-of-NNNNN.cmr > features.cmr
# A part that exists is not redone, so a failed array can simply be re-run.
# Env: THREADS (cmr-encode threads, default 1). Written under a temporary name.
. "$(dirname "$0")/common.sh"
[ $# -ge 4 ] && [ $# -le 5 ] || { echo "usage: extract-shard.sh LIST OUTDIR I N [MODEL.cmr]" >&2; exit 2; }
list=$1 outdir=$2 i=$3 n=$4 model=${5:-}
[[ "$n" =~ ^[0-9]+$ && "$i" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$i" -lt "$n" ] ||
    { echo "extract-shard.sh: I and N are integers with 0 <= I < N, got '$i' and '$n'" >&2; exit 2; }
need_file "$list"
out=$(printf '%s/part-%05d-of-%05d.cmr' "$outdir" "$((10#$i))" "$((10#$n))")
if [ -s "$out" ]; then
    say "$out exists: nothing to do"
    exit 0
fi
tmp_for "$out"
say "shard $i/$n of $list ($([ -n "$model" ] && echo "encoder $model" || echo MFCC))"
if [ -z "$model" ]; then
    cmr decode -q --shard "$i/$n" --list "$list" | cmr resample | cmr mfcc | cmr summarize > "$TMP_OUT"
else
    need_file "$model"
    cmr decode -q --shard "$i/$n" --list "$list" | cmr resample | cmr mel | cmr segment |
        cmr encode --model "$model" --threads "${THREADS:-1}" | cmr summarize > "$TMP_OUT"
fi
commit "$out"
say "wrote $out"
