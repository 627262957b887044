#!/bin/bash
# train.sh AUDIO.cmr OUTDIR STRATEGY LOSS WIDTH EPOCHS SEED
# Train one encoder self-supervised (PAPER.md 2-6) on the tracks of AUDIO.cmr
# (audio.sh's output) and leave OUTDIR/model.cmr and OUTDIR/train.tsv:
#   STRATEGY  self | adjacent | random   positive sampling (ignored for LOSS=cpc,
#                                         which reads runs of consecutive segments)
#   LOSS      infonce (siamese, 128-d) | multi (multi-level, 640-d) | cpc (MelCPC, 256-d)
#   WIDTH     channel multiplier (1 = the paper's encoder)
#   EPOCHS    passes over the tracks, one example per track per pass
#   SEED      seeds the sampling, the augmentation and the initialisation
# The mel standardisation (mean, std) is computed once over AUDIO.cmr into
# AUDIO.stats and stored in the model. Env: BATCH (16), THREADS (cmr-train threads,
# default 1), AUGMENT (1; 0 trains on plain 3 s crops), TRAIN_FLAGS (more cmr-train
# options), STANDIN (1: an untrained cmr-model init model instead of training, to
# test the graph), PROGRESS_EVERY (N: prefix the trainer's messages with the model's
# name and keep every N-th epoch line, for trainings run side by side). A killed run resumes from OUTDIR/checkpoint.cmr when run again.
. "$(dirname "$0")/common.sh"
[ $# -eq 7 ] || { echo "usage: train.sh AUDIO.cmr OUTDIR STRATEGY LOSS WIDTH EPOCHS SEED" >&2; exit 2; }
audio=$1 dir=$2 strategy=$3 loss=$4 width=$5 epochs=$6 seed=$7
need_file "$audio"
case $loss in
    infonce) model=siamese kind=encoder ;;
    multi)   model=multi kind=multi ;;
    cpc)     model=cpc kind=cpc strategy=sequence ;;
    *) echo "train.sh: LOSS is infonce, multi or cpc, got '$loss'" >&2; exit 2 ;;
esac
case $strategy in
    self|adjacent|random|sequence) ;;
    *) echo "train.sh: STRATEGY is self, adjacent or random, got '$strategy'" >&2; exit 2 ;;
esac
mkdir -p "$dir"

# the training set's mel statistics, shared by every model trained on AUDIO
stats=${audio%.cmr}.stats
if [ ! -s "$stats" ]; then
    say "mel statistics of $audio"
    tmp_for "$stats"
    cmr mel --stats "$TMP_OUT" "$audio" > /dev/null
    commit "$stats"
fi

if [ "${STANDIN:-0}" = 1 ]; then
    # For testing the graph only: an untrained, randomly initialised model of the same
    # kind and width, in a second (no training). Its scores mean nothing.
    say "STANDIN=1: writing an UNTRAINED $kind model (width $width), not a result"
    mean=$(awk '$1 == "mean" {print $2}' "$stats") std=$(awk '$1 == "std" {print $2}' "$stats")
    cmr model init -q --kind "$kind" --width "$width" --seed "$seed" \
        --mel-mean "$mean" --mel-std "$std" "$dir/model.cmr"
    printf 'step\tepoch\tloss\n' > "$dir/train.tsv"
    exit 0
fi

# pairs (or sequences) -> augmentation -> log-mel -> the trainer
crop=()
aug=(cmr augment --seed "$seed")
if [ "${AUGMENT:-1}" = 0 ]; then
    [ "$strategy" != self ] || die "STRATEGY=self needs the augmentation (AUGMENT=1)"
    crop=(--crop 3)
    aug=(cat)
fi
resume=()
[ -s "$dir/checkpoint.cmr" ] && resume=(--resume "$dir/checkpoint.cmr") &&
    say "resuming from $dir/checkpoint.cmr"
say "training $loss/$strategy width $width, $epochs epochs, seed $seed"
pipeline() {
    # shellcheck disable=SC2086
    cmr pair --strategy "$strategy" --epochs "$epochs" --seed "$seed" "${crop[@]}" "$audio" |
        "${aug[@]}" | cmr mel |
        cmr train --model "$model" --width "$width" --batch "${BATCH:-16}" --epochs "$epochs" \
            --seed "$seed" --stats "$stats" --threads "${THREADS:-1}" \
            --out "$dir/checkpoint.cmr" --log "$dir/train.tsv.part" "${resume[@]}" ${TRAIN_FLAGS:-}
}
if [ -n "${PROGRESS_EVERY:-}" ]; then
    # several trainings side by side (make -j): each line names its model, and
    # cmr-train's per-epoch lines are thinned to the first and every N-th epoch
    name=$(basename "$dir")
    pipeline 2>&1 | awk -v name="$name" -v n="$PROGRESS_EVERY" '
        /^cmr-train: epoch [0-9]+:/ { e = $3 + 0; if (e > 0 && (e + 1) % n) next }
        { print "[" name "] " $0; fflush() }' >&2
else
    pipeline
fi
# the finished model and its log, renamed only once training completed
mv -f "$dir/train.tsv.part" "$dir/train.tsv"
mv -f "$dir/checkpoint.cmr" "$dir/model.cmr"
say "wrote $dir/model.cmr"
