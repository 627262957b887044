#!/bin/bash
# features.sh LIST OUT.cmr [MODEL.cmr]
# One "summary" frame per track of a track list (the mean and the standard
# deviation over the track, PAPER.md 7), with the list's metadata (split, label,
# tags, playlists) passed through:
#   without MODEL: the MFCC baseline, 40 coefficients per frame -> 80 values
#   with MODEL:    log-mel, back-to-back 3 s segments, the encoder's embeddings
#                  (cmr-encode; MelCPC: the GRU outputs) -> 2 x the embedding size
# Env: THREADS (cmr-encode threads, default 1). Written under a temporary name.
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: features.sh LIST OUT.cmr [MODEL.cmr]" >&2; exit 2; }
list=$1 out=$2 model=${3:-}
need_file "$list"
tmp_for "$out"
say "$(basename "$(dirname "$out")")/$(basename "$out") <- $list ($([ -n "$model" ] && echo "encoder $model" || echo MFCC))"
if [ -z "$model" ]; then
    cmr decode -q --list "$list" | cmr resample | cmr mfcc | cmr summarize > "$TMP_OUT"
else
    need_file "$model"
    cmr decode -q --list "$list" | cmr resample | cmr mel | cmr segment |
        cmr encode --model "$model" --threads "${THREADS:-1}" | cmr summarize > "$TMP_OUT"
fi
commit "$out"
say "wrote $out"
