#!/bin/bash
# pretrain-card.sh RUNDIR TRACKS.tsv "STRATEGY LOSS WIDTH EPOCHS SEED" [SCORES.tsv]
# Write RUNDIR/cmr-base.cmr from RUNDIR/model.cmr (train.sh's output): the weights
# and running statistics without Adam's moments (cmr-model card), with the model
# card in the metadata (`cmr-model info` shows it): the data (tracks, hours,
# packages of the training pool, from build-pretrain-data's tracks.tsv), the
# licences per package, the configuration, the steps, epochs and seed, the loss,
# the validation curve's best and last points (RUNDIR/curve.tsv, when make pretrain
# wrote one), and the held-out scores when SCORES.tsv (pretrain-eval.sh's table.tsv)
# is given.
. "$(dirname "$0")/common.sh"
[ $# -ge 3 ] && [ $# -le 4 ] || { echo "usage: pretrain-card.sh RUNDIR TRACKS.tsv 'STRATEGY LOSS WIDTH EPOCHS SEED' [SCORES.tsv]" >&2; exit 2; }
dir=$1 tracks=$2 scores=${4:-}
read -r strategy loss width epochs seed <<<"$3"
need_file "$dir/model.cmr"
need_file "$dir/train.tsv"
need_file "$tracks"
pool=$dir/pool.tsv
need_file "$pool"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# the tracks trained on: the pool's rows, looked up in tracks.tsv
awk -F'\t' 'NR == FNR { if (FNR > 1) want[$2] = 1; next }
    FNR > 1 && ($2 in want) { n++; s += $5; p[$3] = 1; lic[$3] = lic[$3] == "" ? $4 : (index(lic[$3], $4) ? lic[$3] : lic[$3] " / " $4) }
    END { np = 0; for (k in p) np++
          printf "%d distinct tracks, %.2f h, from %d Debian 12 packages (pipelines/data/build-pretrain-data)\n", n, s / 3600, np > "'"$tmp"'/data"
          for (k in lic) print k ": " lic[k] | "sort > '"$tmp"'/lic" }' "$pool" "$tracks"
# (no wall time: the same seed on the same machine gives the same bytes)
# licences: one line, packages separated by "; " (each value at most 4096 bytes)
paste -sd';' "$tmp/lic" | sed 's/;/; /g' | cut -c1-4000 > "$tmp/licences"
steps=$(tail -n 1 "$dir/train.tsv" | cut -f1)
ep=$(tail -n 1 "$dir/train.tsv" | cut -f2)
# the mean loss of the first and of the last epoch
curve=$(awk -F'\t' 'NR > 1 { s[$2] += $3; n[$2]++; if (first == "") first = $2; last = $2 }
    END { printf "epoch loss %.4f (epoch %d) -> %.4f (epoch %d)", s[first] / n[first], first, s[last] / n[last], last }' "$dir/train.tsv")
# the schedule as the trainer recorded it
meta() { cmr model info "$dir/model.cmr" | sed -n "s/^meta        $1 = //p"; }
lr0=$(meta train.lr0) patience=$(meta train.patience) factor=$(printf '%g' "$(meta train.factor)")
batch=$(meta train.batch)
kind=$([ "$loss" = multi ] && echo "multi-level encoder (640-d: 5 levels x 128), InfoNCE per level averaged" ||
       echo "$loss")
set_args=(--set card.name=cmr-base
    --set "card.config=$kind; positives: $strategy segments (cmr-pair), augmentation (cmr-augment: pitch, stretch, reverb, noise, polarity); width $width; batch $batch; Adam lr $lr0, x$factor after more than $patience epochs without improvement; input 3 s of 96-band log-mel at 16 kHz"
    --set "card.training=seed $seed; $epochs epochs of one example per track, $steps steps (last epoch $ep); $curve"
    --set-file "card.data=$tmp/data"
    --set-file "card.licences=$tmp/licences"
    --set "card.derived=The weights are trained on GPL and CC-BY-SA music and derived from it: see pipelines/data/LICENSES.md and docs/models.md"
    --set "card.doc=docs/models.md (cmr-base)")
# the validation curve (make pretrain: pretrain-curve.sh), when there is one
if [ -s "$dir/curve.tsv" ]; then
    awk -F'\t' 'NR > 1 { n++; if (n == 1 || $4 < best) { best = $4; be = $2; ba = $5 }; le = $2; ll = $4; la = $5 }
        END { if (n) printf "held-out contrastive loss and accuracy of %d snapshots (pipelines/pretrain-curve.sh): best loss %.4f (accuracy %.3f) after epoch %d; last %.4f (accuracy %.3f) after epoch %d\n", n, best, ba, be, ll, la, le }' \
        "$dir/curve.tsv" > "$tmp/validation"
    [ ! -s "$tmp/validation" ] || set_args+=(--set-file "card.validation=$tmp/validation")
fi
if [ -n "$scores" ]; then
    need_file "$scores"
    # one line: feature: task metric value, ...
    awk -F'\t' 'NR == 1 { for (i = 2; i <= NF; i++) h[i] = $i; next }
        { l = $1 ":"; for (i = 2; i <= NF; i++) l = l " " h[i] " " $i; printf "%s%s", (NR > 2 ? "; " : ""), l }
        END { print "" }' "$scores" | cut -c1-4000 > "$tmp/scores"
    set_args+=(--set-file "card.scores=$tmp/scores")
fi
tmp_for "$dir/cmr-base.cmr"
cmr model card -q "${set_args[@]}" "$dir/model.cmr" "$TMP_OUT"
commit "$dir/cmr-base.cmr"
say "wrote $dir/cmr-base.cmr ($(du -h "$dir/cmr-base.cmr" | cut -f1))"
