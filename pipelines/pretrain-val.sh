#!/bin/bash
# pretrain-val.sh TRACKS.tsv OUT.cmr
# The validation pairs of make pretrain: log-mel pairs of adjacent 3 s segments cut
# from the held-out tracks of TRACKS.tsv (build-pretrain-data's pool/tracks.tsv, the
# rows of split "heldout": soundtracks the training pool leaves out), 3 per track
# with a fixed seed (7), no augmentation. cmr-train --eval scores a model on them
# (pretrain-curve.sh). Written under a temporary name, then renamed; the list of
# held-out tracks it read is left beside it as OUT.heldout.tsv (.cmr dropped).
. "$(dirname "$0")/common.sh"
[ $# -eq 2 ] || { echo "usage: pretrain-val.sh TRACKS.tsv OUT.cmr" >&2; exit 2; }
tracks=$1 out=$2
need_file "$tracks"
tmp_for "$out"
# the held-out list is kept beside OUT (its name is in the stream's provenance)
list=${out%.cmr}.heldout.tsv
# relative paths are relative to TRACKS.tsv's folder
base=$(cd "$(dirname "$tracks")" && pwd)
awk -F'\t' -v OFS='\t' -v base="$base" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; print "path", "track", "split"; next }
    $c["split"] == "heldout" { p = $c["path"]; if (p !~ /^\//) p = base "/" p; print p, $c["track"], "validation"; n++ }
    END { if (!n) { print "pretrain-val.sh: no held-out tracks in " FILENAME > "/dev/stderr"; exit 1 } }' "$tracks" > "$TMP_OUT"
mv -f -- "$TMP_OUT" "$list"
say "validation pairs from $(($(wc -l < "$list") - 1)) held-out tracks"
cmr decode -q --list "$list" | cmr resample |
    cmr pair -q --strategy adjacent --epochs 3 --seed 7 --crop 3 | cmr mel > "$TMP_OUT"
commit "$out"
