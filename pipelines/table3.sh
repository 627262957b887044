#!/bin/bash
# table3.sh RESULTS GENRE_NAME FEATURE...
# Collect RESULTS/scores/FEATURE/{genre,inst,rec,tags}.json (evaluate.sh) into
# RESULTS/table3.tsv and RESULTS/table3.md, in the layout of the paper's Table 3
# with the paper's numbers (PAPER.md 9: FMA-small genre, IRMAS instruments,
# AOTM-2011 recommendation; Table 2 for MSD tagging) beside ours. GENRE_NAME
# titles the first task ("genre", or "style" for the demo's game soundtracks).
# A task without scores is shown as "-". FEATURE: mfcc, self-infonce, self-multi,
# adjacent-infonce, adjacent-multi, random-infonce, random-multi, cpc.
. "$(dirname "$0")/common.sh"
[ $# -ge 3 ] || { echo "usage: table3.sh RESULTS GENRE_NAME FEATURE..." >&2; exit 2; }
R=$1 gname=$2; shift 2
tmp_for "$R/table3.tsv"
tsv_tmp=$TMP_OUT
for f in "$@"; do
    d=$R/scores/$f
    printf '%s\t' "$f"
    for t in genre inst rec tags; do
        if [ -s "$d/$t.json" ]; then tr '\n' ' ' < "$d/$t.json"; fi
        printf '\t'
    done
    echo
done | awk -F'\t' -v OFS='\t' -v gname="$gname" '
    function get(s, cls, key,    i, n, parts, m) {  # value of key in the JSON line whose classifier is cls
        n = split(s, parts, /\} *\{/)
        for (i = 1; i <= n; i++)
            if (cls == "" || index(parts[i], "\"classifier\":\"" cls "\""))
                if (match(parts[i], "\"" key "\":-?[0-9.eE+-]+")) {
                    m = substr(parts[i], RSTART + length(key) + 3, RLENGTH - length(key) - 3)
                    return sprintf("%.3f", m)
                }
        return ""
    }
    function dim(s,    m) { if (match(s, /"features":[0-9]+/)) return substr(s, RSTART + 11, RLENGTH - 11) / 2; return "" }
    BEGIN {
        # the paper: feature, loss, dim, genre SVM, genre LR, inst SVM, inst LR, HR@10, MPR, tag ROC-AUC
        P["mfcc"]             = "MFCC\t-\t40\t.397\t.401\t.473\t.481\t.196\t.381\t"
        P["self-infonce"]     = "Self-aug\tInfoNCE\t128\t.409\t.418\t.431\t.438\t.250\t.339\t"
        P["self-multi"]       = "Self-aug\tMulti\t640\t.373\t.413\t.520\t.532\t.242\t.350\t"
        P["adjacent-infonce"] = "Adjacent\tInfoNCE\t128\t.466\t.458\t.388\t.379\t.279\t.318\t"
        P["adjacent-multi"]   = "Adjacent\tMulti\t640\t.450\t.446\t.592\t.575\t.262\t.332\t"
        P["random-infonce"]   = "Random\tInfoNCE\t128\t.418\t.431\t.374\t.361\t.239\t.377\t"
        P["random-multi"]     = "Random\tMulti\t640\t.436\t.461\t.581\t.560\t.260\t.330\t"
        P["cpc"]              = "MelCPC\tInfoNCE\t256\t.480\t.491\t.490\t.486\t.280\t.316\t.856"
        print "config", "feature", "loss", "dim", \
              gname "_svm", gname "_svm_paper", gname "_lr", gname "_lr_paper", \
              "inst_svm", "inst_svm_paper", "inst_lr", "inst_lr_paper", \
              "hr10", "hr10_paper", "mpr", "mpr_paper", \
              "tag_roc_auc", "tag_roc_auc_paper", "tag_pr_auc"
    }
    {
        if (!($1 in P)) { print "table3.sh: unknown feature " $1 > "/dev/stderr"; exit 2 }
        split(P[$1], p, "\t")
        d = dim($2); if (d == "") d = dim($3); if (d == "") d = dim($4); if (d == "") d = dim($5)
        print $1, p[1], p[2], (d == "" ? p[3] : d), \
              get($2, "svm", "accuracy"), p[4], get($2, "logreg", "accuracy"), p[5], \
              get($3, "svm", "accuracy"), p[6], get($3, "logreg", "accuracy"), p[7], \
              get($4, "", "hr10"), p[8], get($4, "", "mpr"), p[9], \
              get($5, "logreg", "roc_auc"), p[10], get($5, "logreg", "pr_auc")
    }' > "$tsv_tmp"
commit "$R/table3.tsv"

# Markdown: "ours (paper)"; tag columns only when some feature has tagging scores
tmp_for "$R/table3.md"
awk -F'\t' -v gname="$gname" '
    function cell(ours, paper) { return (ours == "" ? "-" : ours) (paper == "" ? "" : " (" paper ")") }
    NR == 1 { next }
    { rows[NR] = $0; if ($17 != "") tags = 1 }
    END {
        G = toupper(substr(gname, 1, 1)) substr(gname, 2)
        printf "| feature | loss | dim | %s SVM | %s LR | Inst SVM | Inst LR | HR@10 | MPR |%s\n", G, G, tags ? " tag ROC-AUC | tag PR-AUC |" : ""
        printf "|---|---|---|---|---|---|---|---|---|%s\n", tags ? "---|---|" : ""
        for (i = 2; i <= NR; i++) {
            split(rows[i], c, "\t")
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |", c[2], c[3], c[4], \
                cell(c[5], c[6]), cell(c[7], c[8]), cell(c[9], c[10]), cell(c[11], c[12]), \
                cell(c[13], c[14]), cell(c[15], c[16])
            if (tags) printf " %s | %s |", cell(c[17], c[18]), cell(c[19], "")
            printf "\n"
        }
        printf "\nOurs, then the paper'"'"'s number in brackets (Choi et al. 2022, Table 3: FMA-small genre, IRMAS instruments, AOTM-2011 with 100 negatives; MSD tagging from Table 2). Accuracies of the linear SVM and logistic regression on the test split; HR@10 and MPR of ItemKNN playlist continuation (MPR: lower is better). The paper trained at full width on MSD; compare trends, not values.\n"
    }' "$R/table3.tsv" > "$TMP_OUT"
commit "$R/table3.md"
