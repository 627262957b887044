#!/bin/bash
# evaluate.sh TASK FEATURES.cmr OUT.json
# Score per-track features (features.sh) on one task, as JSON lines:
#   classify  linear SVM and logistic regression (cmr-probe --json: two lines)
#   tags      one logistic regression per tag (cmr-probe --tags --json)
#   recommend ItemKNN-CBF playlist continuation (cmr-knn --json), 3 queries,
#             NEGATIVES negatives per item (default 100; "all" ranks against every
#             track outside the playlist), seed KNN_SEED (default: no shuffle, negatives seeded with 0)
# Written under a temporary name, then renamed.
. "$(dirname "$0")/common.sh"
[ $# -eq 3 ] || { echo "usage: evaluate.sh classify|tags|recommend FEATURES.cmr OUT.json" >&2; exit 2; }
task=$1 feats=$2 out=$3
case $task in
    classify|tags|recommend) ;;
    *) echo "evaluate.sh: TASK is classify, tags or recommend, got '$task'" >&2; exit 2 ;;
esac
need_file "$feats"
tmp_for "$out"
case $task in
    classify)  cmr probe -q --json "$feats" > "$TMP_OUT" ;;
    tags)      cmr probe -q --tags --json "$feats" > "$TMP_OUT" ;;
    recommend) cmr knn -q --json --queries 3 --negatives "${NEGATIVES:-100}" \
                   ${KNN_SEED:+--seed "$KNN_SEED"} "$feats" > "$TMP_OUT" ;;
esac
commit "$out"
# one progress line: the main numbers
num() { tr ',{}' '\n\n\n' <<<"$2" | sed -n "s/^\"$1\":\(.*\)$/\1/p" | head -n 1; }
summary=
while IFS= read -r line; do
    case $task in
        classify)  summary+="$(num classifier "$line" | tr -d '"') $(num accuracy "$line") (C $(num C "$line"))  " ;;
        tags)      summary+="ROC-AUC $(num roc_auc "$line") PR-AUC $(num pr_auc "$line")  " ;;
        recommend) summary+="HR@10 $(num hr10 "$line") MPR $(num mpr "$line") ($(num items "$line") items)" ;;
    esac
done < "$out"
say "$(basename "$(dirname "$out")")/$(basename "$out"): $summary"
