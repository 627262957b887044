#!/usr/bin/env bats
# cmr-knn: ItemKNN-CBF, HR@10 and MPR, identical to the numpy reference
# (tests/ref/make_refs_eval.py reproduces cmr's RNG, so seeded runs agree too)
load helpers

REF="$CMR_SRCDIR/tests/ref/eval"

@test "knn: --help goes to stdout, exit 0" {
    run -0 --separate-stderr cmr knn --help
    [[ "$output" == "Usage: cmr-knn"* ]]
}

@test "knn: usage errors" {
    run -2 --separate-stderr cmr knn --bogus "$REF/knn.msgpack"
    assert_error_line knn
    run -2 --separate-stderr cmr knn --negatives 0 "$REF/knn.msgpack"
    [[ "$stderr" == "cmr-knn: --negatives takes an integer in [1, 10000000] or 'all', got '0'"* ]]
    run -2 --separate-stderr cmr knn --negatives some "$REF/knn.msgpack"
    run -2 --separate-stderr cmr knn --queries 0 "$REF/knn.msgpack"
    [[ "$stderr" == "cmr-knn: --queries takes an integer in [1, 1000], got '0'"* ]]
    run -2 --separate-stderr cmr knn --seed -1 "$REF/knn.msgpack"
    run -2 --separate-stderr cmr knn --playlists '' "$REF/knn.msgpack"
}

@test "knn: identical to the numpy reference (all negatives, seeded negatives, shuffled queries)" {
    k=0
    for args in "-N all" "-N all -s 7" "-N 20" "-N 20 -s 5" "-Q 2 -N 30"; do
        k=$((k + 1))
        run -0 --separate-stderr cmr knn --json $args "$REF/knn.msgpack"
        want=$(sed -n "${k}p" "$REF/knn-expected.txt")
        [ "$output" = "$want" ] || { echo "cmr-knn $args: $output, numpy: $want"; false; }
    done
}

@test "knn: playlists from a file give the same result as the metadata" {
    run -0 --separate-stderr cmr knn --json -N all --playlists "$REF/knn-playlists.tsv" "$REF/knn.msgpack"
    [ "$output" = "$(sed -n 1p "$REF/knn-expected.txt")" ]
    [[ "$stderr" == *"1 track not in the input"* ]]
}

@test "knn: the text report" {
    run -0 --separate-stderr cmr knn -N all "$REF/knn.msgpack"
    [[ "${lines[0]}" == "cmr-knn: 60 tracks, 8 features; 13 playlists evaluated, 1 skipped (<= 3 tracks)" ]]
    [[ "${lines[1]}" == "HR@10 0.8889   MPR 0.1165   (45 items, 40 hits; 3 queries, all outside tracks as negatives)" ]]
}

@test "knn: fewer outside tracks than negatives names the playlist" {
    run -1 --separate-stderr cmr knn "$REF/knn.msgpack"
    [[ "$stderr" == 'cmr-knn: knn: playlist "pl00": 56 tracks outside it, fewer than 100 negatives (use fewer negatives, or all)' ]]
}

@test "knn: no playlists, no playlist longer than the queries" {
    run -1 --separate-stderr cmr knn "$REF/probe-genre.msgpack"
    [[ "$stderr" == "cmr-knn: no playlists: no track has 'playlists' metadata" ]]
    run -1 --separate-stderr cmr knn -Q 20 -N all "$REF/knn.msgpack"
    [[ "$stderr" == *"nothing to rank"* ]]
}

@test "knn: bad playlist files" {
    printf 'track\tlists\n' > "$TMP/p.tsv"
    run -1 --separate-stderr cmr knn -p "$TMP/p.tsv" "$REF/knn.msgpack"
    [[ "$stderr" == *"the header needs columns 'track' and 'playlists'"* ]]
    printf 'track\tplaylists\nt00\n' > "$TMP/p.tsv"
    run -1 --separate-stderr cmr knn -p "$TMP/p.tsv" "$REF/knn.msgpack"
    [[ "$stderr" == *"p.tsv:2: 1 fields, the header has 2" ]]
    run -1 --separate-stderr cmr knn -p "$TMP/none.tsv" "$REF/knn.msgpack"
    [[ "$stderr" == *"No such file"* ]]
}

@test "knn: NaN values, not one vector per track, empty and truncated input" {
    run -1 --separate-stderr cmr knn "$REF/summary-in.msgpack"
    [[ "$stderr" == *"run cmr-summarize first"* ]]
    run -1 --separate-stderr cmr knn /dev/null
    assert_error_line knn
    head -c 4000 "$REF/knn.msgpack" > "$TMP/t.cmr"
    run -1 --separate-stderr cmr knn "$TMP/t.cmr"
    assert_error_line knn
}

@test "knn: all-zero vectors (no cosine) are refused, not MPR 1.0 (issue 11)" {
    run -1 --separate-stderr bash -c "'$CMR_BUILDDIR/tests/tools/cmr-mkframes' --kind embedding --dims 8 --count 1 --tracks 20 --fill 0 --meta playlists=p1 | '$CMR_BINDIR/cmr-knn' -N 5"
    [ "$stderr" = "cmr-knn: knn: all 20 vectors are zero: cosine similarity is undefined (a collapsed or untrained encoder?)" ]
    [ -z "$output" ]
}
