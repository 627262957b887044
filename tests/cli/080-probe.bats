#!/usr/bin/env bats
# cmr-probe: liblinear probes, checked against scikit-learn (tests/ref/make_refs_eval.py)
load helpers

REF="$CMR_SRCDIR/tests/ref/eval"

# json_get KEY LINE: the value after the first "KEY": in LINE
json_get() {
    grep -o "\"$1\":[^,}]*" <<<"$2" | head -n1 | cut -d: -f2
}

# close A B TOL: |A - B| <= TOL
close() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'
}

@test "probe: --help goes to stdout, exit 0" {
    run -0 --separate-stderr cmr probe --help
    [[ "$output" == "Usage: cmr-probe"* ]]
}

@test "probe: usage errors" {
    run -2 --separate-stderr cmr probe --bogus "$REF/probe-genre.msgpack"
    assert_error_line probe
    run -2 --separate-stderr cmr probe --classifier tree "$REF/probe-genre.msgpack"
    [[ "$stderr" == "cmr-probe: --classifier takes svm, logreg or both, got 'tree'"* ]]
    run -2 --separate-stderr cmr probe --C 0 "$REF/probe-genre.msgpack"
    [[ "$stderr" == "cmr-probe: --C takes a comma-separated list of numbers in (0, 1e12], got '0'"* ]]
    run -2 --separate-stderr cmr probe --C 1,abc "$REF/probe-genre.msgpack"
    run -2 --separate-stderr cmr probe --C 1,0.1 "$REF/probe-genre.msgpack"
    [[ "$stderr" == *"increasing"* ]]
    run -2 --separate-stderr cmr probe --tol 0 "$REF/probe-genre.msgpack"
    run -2 --separate-stderr cmr probe --tags --classifier svm "$REF/probe-tags.msgpack"
    run -2 --separate-stderr cmr probe --label-key '' "$REF/probe-genre.msgpack"
}

@test "probe: accuracy within 0.5 points of scikit-learn (LinearSVC, LogisticRegression liblinear)" {
    run -0 --separate-stderr cmr probe --json "$REF/probe-genre.msgpack"
    [ "${#lines[@]}" -eq 2 ]
    for i in 0 1; do
        read -r name C val acc f1 < <(sed -n "$((i + 2))p" "$REF/probe-genre.sklearn.txt")
        line=${lines[$i]}
        [[ "$line" == "{\"classifier\":\"$name\","* ]]
        got=$(json_get accuracy "$line")
        echo "# $name: cmr accuracy $got C $(json_get C "$line"), sklearn $acc C $C" >&3
        close "$got" "$acc" 0.005
        close "$(json_get macro_f1 "$line")" "$f1" 0.01
    done
}

@test "probe: the text report has accuracy, macro-F1 and the confusion matrix" {
    run -0 --separate-stderr cmr probe --classifier svm "$REF/probe-genre.msgpack"
    [[ "${lines[0]}" == "cmr-probe: 400 tracks (234 training, 77 validation, 89 test), 24 features, 4 classes" ]]
    [[ "${lines[1]}" == "svm"*"test accuracy 0.5618"*"macro-F1"* ]]
    [[ "$output" == *"confusion on test"* ]]
    [ "${#lines[@]}" -eq 8 ]
}

@test "probe: a one-value C grid needs no validation rows to choose from" {
    run -0 --separate-stderr cmr probe --json --classifier logreg --C 0.01 "$REF/probe-genre.msgpack"
    [ "$(json_get C "$output")" = 0.01 ]
}

@test "probe: --tags: macro ROC-AUC and PR-AUC match scikit-learn" {
    run -0 --separate-stderr cmr probe --tags --json "$REF/probe-tags.msgpack"
    read -r name C val roc ap used < <(sed -n 2p "$REF/probe-tags.sklearn.txt")
    echo "# cmr roc $(json_get roc_auc "$output") pr $(json_get pr_auc "$output"); sklearn $roc $ap" >&3
    close "$(json_get roc_auc "$output")" "$roc" 0.005
    close "$(json_get pr_auc "$output")" "$ap" 0.005
    [ "$(json_get tags_scored "$output")" = "$used" ]
    [[ "$output" == *'{"tag":"sad","roc_auc":null,"pr_auc":null}'* ]]
}

@test "probe: results are deterministic" {
    a=$(cmr probe --json "$REF/probe-genre.msgpack")
    b=$(cmr probe --json "$REF/probe-genre.msgpack")
    [ "$a" = "$b" ]
}

@test "probe: missing split or label metadata" {
    run -1 --separate-stderr cmr probe "$REF/knn.msgpack"
    [[ "$stderr" == "cmr-probe: track \"t00\" has no 'split' metadata" ]]
    run -1 --separate-stderr cmr probe "$REF/probe-tags.msgpack"
    [[ "$stderr" == "cmr-probe: track \"m000\" has no 'label' metadata" ]]
}

@test "probe: no training rows, no validation rows, a class missing from training" {
    run -1 --separate-stderr cmr probe -q --split-key label "$REF/probe-genre.msgpack"
    [[ "$stderr" == "cmr-probe: probe: no training rows" ]]
    run -1 --separate-stderr cmr probe "$REF/bad-failed.msgpack"
    [[ "$stderr" == *"need at least 2 classes"* || "$stderr" == *"no validation rows"* ]]
    run -1 --separate-stderr cmr probe --label-key split "$REF/probe-genre.msgpack"
    [[ "$stderr" == *"has no training row"* ]]
}

@test "probe: NaN features, vectors of different lengths, not one vector per track" {
    run -1 --separate-stderr cmr probe "$REF/bad-nan.msgpack"
    [[ "$stderr" == "cmr-probe: probe: row 1, feature 2 is nan" ]]
    run -1 --separate-stderr cmr probe "$REF/bad-dims.msgpack"
    [[ "$stderr" == *'track "b" has a vector of 3 values, the tracks before it 4' ]]
    run -1 --separate-stderr cmr probe "$REF/summary-in.msgpack"
    [[ "$stderr" == *"run cmr-summarize first"* ]]
    run -1 --separate-stderr cmr probe "$REF/bad-rank3.msgpack"
    [[ "$stderr" == *"run cmr-summarize first"* ]]
}

@test "probe: empty and truncated input" {
    run -1 --separate-stderr cmr probe /dev/null
    assert_error_line probe
    head -c 5000 "$REF/probe-genre.msgpack" > "$TMP/t.cmr"
    run -1 --separate-stderr cmr probe "$TMP/t.cmr"
    assert_error_line probe
}

@test "probe: an error leaves nothing on stdout (the report is written whole or not at all; issue 11)" {
    run -1 --separate-stderr cmr probe --label-key split "$REF/probe-genre.msgpack"
    [[ "$stderr" == *"has no training row"* ]]
    [ -z "$output" ]
    run -0 --separate-stderr cmr probe "$REF/probe-genre.msgpack"
    [[ "${lines[0]}" == "cmr-probe: "*" tracks ("* ]]
}
