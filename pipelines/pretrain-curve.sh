#!/bin/bash
# pretrain-curve.sh OUT.tsv TRAIN.tsv VALPAIRS.cmr MODEL...
# The loss curve of a training run beside held-out scores: one row per MODEL (the
# checkpoints of a run, e.g. copies of its checkpoint.cmr taken after each epoch):
#   step  epoch  train_loss  val_loss  val_acc  chance
# train_loss is the mean batch loss of TRAIN.tsv (cmr-train --log) over the epoch that
# ends at the checkpoint's step; val_loss and val_acc are cmr-train --eval's contrastive
# loss and accuracy on VALPAIRS.cmr, log-mel pairs cut from held-out tracks, e.g.
#   cmr-decode --list music.tsv | cmr-resample > val.cmr
#   cmr-pair --strategy adjacent --epochs 3 --seed 7 --crop 3 val.cmr | cmr-mel > pairs.cmr
# Written under a temporary name, then renamed.
. "$(dirname "$0")/common.sh"
[ $# -ge 4 ] || { echo "usage: pretrain-curve.sh OUT.tsv TRAIN.tsv VALPAIRS.cmr MODEL..." >&2; exit 2; }
out=$1 log=$2 pairs=$3; shift 3
need_file "$log"; need_file "$pairs"
tmp_for "$out"
printf 'step\tepoch\ttrain_loss\tval_loss\tval_acc\tchance\n' > "$TMP_OUT"
for m in "$@"; do
    step=$(cmr model info "$m" | sed -n 's/^training    step \([0-9]*\),.*/\1/p')
    train=$(awk -F'\t' -v s="$step" 'NR > 1 && $1 <= s { e = $2; sum[e] += $3; n[e]++; last = e }
        END { if (last != "") printf "%s\t%.4f", last, sum[last] / n[last] }' "$log")
    val=$(cmr train --eval "$m" --batch 16 "$pairs" | awk -F'\t' 'NR == 2 { printf "%.4f\t%.4f\t%.4f", $3, $4, $5 }')
    printf '%s\t%s\t%s\n' "$step" "$train" "$val" >> "$TMP_OUT"
    say "step $step: $train $val"
done
sort -n -o "$TMP_OUT" "$TMP_OUT"
commit "$out"
