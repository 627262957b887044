#!/bin/bash
# pretrain-select.sh AUDIO.cmr OUTDIR DATA WIDTH EPOCHS SEED CONFIG...
# Choose cmr-base's training configuration by measurement: train each CONFIG
# (STRATEGY:LOSS:AUGMENT, e.g. adjacent:multi:1) on AUDIO.cmr (the pretraining
# pool) for the same EPOCHS at the same WIDTH and SEED (train.sh), score each on
# the held-out sets of DATA (pretrain-eval.sh), and rank them by the mean of the
# probes' *validation* accuracies (style and instrument, SVM and logistic
# regression: the splits the probes pick C on; their test splits and the
# playlists stay unseen by the choice). Writes OUTDIR/selection.tsv (best first)
#   config  val_style_svm  val_style_lr  val_inst_svm  val_inst_lr  val_mean
# and OUTDIR/choice (the best CONFIG). Cached: models and scores that exist are
# not recomputed. Env: THREADS (cmr-train threads, 1).
. "$(dirname "$0")/common.sh"
[ $# -ge 7 ] || { echo "usage: pretrain-select.sh AUDIO.cmr OUTDIR DATA WIDTH EPOCHS SEED CONFIG..." >&2; exit 2; }
audio=$1 out=$2 data=$3 width=$4 epochs=$5 seed=$6; shift 6
here=$(dirname "$0")
need_file "$audio"
pairs=()
for c in "$@"; do
    IFS=: read -r strategy loss augment <<<"$c"
    [[ -n $strategy && -n $loss && $augment =~ ^[01]$ ]] || die "CONFIG is STRATEGY:LOSS:AUGMENT, got '$c'"
    name=$strategy-$loss-aug$augment
    dir=$out/models/$name
    if [ ! -s "$dir/model.cmr" ]; then
        say "training $name: width $width, $epochs epochs, seed $seed"
        AUGMENT=$augment "$here/train.sh" "$audio" "$dir" "$strategy" "$loss" "$width" "$epochs" "$seed"
    fi
    pairs+=("$name=$dir/model.cmr")
done
"$here/pretrain-eval.sh" "$data" "$out/eval" "${pairs[@]}" > /dev/null
# the validation accuracies of each probe (scores/NAME/TASK.json: one JSON
# object per classifier, with "validation_accuracy")
val() { sed -n 's/.*"classifier":"'"$2"'".*"validation_accuracy":\([0-9.eE+-]*\).*/\1/p' "$1" | head -n 1; }
tmp_for "$out/selection.tsv"
{
    printf 'config\tval_style_svm\tval_style_lr\tval_inst_svm\tval_inst_lr\tval_mean\n'
    for c in "$@"; do
        IFS=: read -r strategy loss augment <<<"$c"
        s=$out/eval/scores/$strategy-$loss-aug$augment
        printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$(val "$s/style.json" svm)" "$(val "$s/style.json" logreg)" \
            "$(val "$s/inst.json" svm)" "$(val "$s/inst.json" logreg)"
    done | awk -F'\t' -v OFS='\t' '{ printf "%s", $1; m = 0
        for (i = 2; i <= 5; i++) { if ($i == "") { print "missing score for " $1 > "/dev/stderr"; exit 1 }
                                   printf "\t%.4f", $i; m += $i }
        printf "\t%.4f\n", m / 4 }' | sort -t "$(printf '\t')" -k6,6gr -k1,1
} > "$TMP_OUT"
commit "$out/selection.tsv"
awk 'NR == 2 { print $1 }' "$out/selection.tsv" > "$out/choice"
column -t "$out/selection.tsv" >&2
say "chosen: $(cat "$out/choice")"
