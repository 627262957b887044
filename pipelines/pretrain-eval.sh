#!/bin/bash
# pretrain-eval.sh DATA OUTDIR NAME=MODEL...
# Score encoders on the held-out sets against the MFCC baseline, with the
# project's own filters (features.sh: cmr-summarize over the track; evaluate.sh:
# cmr-probe, cmr-knn). DATA is the demo's data folder (build-demo-data, then
# build-ood-instruments):
#   style  music.tsv: which of the held-out soundtracks a track comes from
#          (linear SVM and logistic regression, training/validation/test split)
#   inst   instruments.tsv: the predominant instrument (FluidR3 renders)
#   ood    instruments-ood.tsv: the same probe trained on FluidR3 renders, tested
#          on Freepats renders through timidity (other samples, other synthesizer)
#   rec    music.tsv's Wesnoth scenario playlists: ItemKNN continuation, HR@10 and
#          MPR, every track outside a playlist a negative
# A MODEL that does not exist is skipped with a message. Writes OUTDIR/features/,
# OUTDIR/scores/NAME/TASK.json, OUTDIR/table.tsv and OUTDIR/table.md (cached:
# what exists is not recomputed). Env: THREADS (cmr-encode threads, default 1).
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] || { echo "usage: pretrain-eval.sh DATA OUTDIR NAME=MODEL..." >&2; exit 2; }
data=$1 out=$2; shift 2
here=$(dirname "$0")
need_file "$data/music.tsv"
need_file "$data/instruments.tsv"
need_file "$data/instruments-ood.tsv"
export NEGATIVES=all
names=(mfcc) models=("")
for a in "$@"; do
    name=${a%%=*} model=${a#*=}
    [[ $a == *=* && -n $name ]] || die "NAME=MODEL expected, got '$a'"
    if [ -s "$model" ]; then names+=("$name"); models+=("$model")
    else say "no $model: $name left out"; fi
done
for i in "${!names[@]}"; do
    n=${names[$i]} m=${models[$i]}
    for set in style:music inst:instruments ood:instruments-ood; do
        f=$out/features/$n/${set%%:*}.cmr
        [ -s "$f" ] || "$here/features.sh" "$data/${set#*:}.tsv" "$f" $m
    done
    for t in style:classify:style inst:classify:inst ood:classify:ood rec:recommend:style; do
        IFS=: read -r task how feat <<<"$t"
        s=$out/scores/$n/$task.json
        [ -s "$s" ] || "$here/evaluate.sh" "$how" "$out/features/$n/$feat.cmr" "$s"
    done
done
# the table: one row per feature
tmp_for "$out/table.tsv"
for n in "${names[@]}"; do
    printf '%s' "$n"
    for t in style inst ood rec; do printf '\t'; tr '\n' ' ' < "$out/scores/$n/$t.json"; done
    echo
done | awk -F'\t' -v OFS='\t' '
    function get(s, cls, key,    i, n, parts, m) {
        n = split(s, parts, /\} *\{/)
        for (i = 1; i <= n; i++)
            if (cls == "" || index(parts[i], "\"classifier\":\"" cls "\""))
                if (match(parts[i], "\"" key "\":-?[0-9.eE+-]+")) {
                    m = substr(parts[i], RSTART + length(key) + 3, RLENGTH - length(key) - 3)
                    return sprintf("%.3f", m)
                }
        return "-"
    }
    function dim(s) { if (match(s, /"features":[0-9]+/)) return substr(s, RSTART + 11, RLENGTH - 11) / 2; return "-" }
    BEGIN { print "feature", "dim", "style_svm", "style_lr", "inst_svm", "inst_lr", "ood_svm", "ood_lr", "hr10", "mpr" }
    { print $1, dim($2), get($2, "svm", "accuracy"), get($2, "logreg", "accuracy"),
            get($3, "svm", "accuracy"), get($3, "logreg", "accuracy"),
            get($4, "svm", "accuracy"), get($4, "logreg", "accuracy"),
            get($5, "", "hr10"), get($5, "", "mpr") }' > "$TMP_OUT"
commit "$out/table.tsv"
tmp_for "$out/table.md"
awk -F'\t' 'NR == 1 { print "| feature | dim | style SVM | style LR | inst SVM | inst LR | inst OOD SVM | inst OOD LR | HR@10 | MPR |"
                      print "|---|---|---|---|---|---|---|---|---|---|"; next }
            { printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$out/table.tsv" > "$TMP_OUT"
commit "$out/table.md"
cat "$out/table.md"
