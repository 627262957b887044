#!/usr/bin/env bats
# cmr-index: build, add, query, info on FAISS; flat cosine ranks exactly as
# cmr-knn scores; every bad input is one clear line and exit 1
load helpers

CAT="$CMR_SRCDIR/tests/ref/eval/knn.msgpack" # 60 summaries of 8 values, t00..t59 (t23 all zero)
EVAL="$CMR_SRCDIR/tests/ref/eval"
mkframes() { "$CMR_BINDIR/../tests/tools/cmr-mkframes" "$@"; }

@test "index: --help goes to stdout, exit 0" {
    run -0 --separate-stderr cmr index --help
    [[ "$output" == "Usage: cmr-index build"* ]]
    [[ "$output" == *"Exit status"* ]]
}

@test "index: usage errors exit 2 with one line naming the program" {
    run -2 --separate-stderr cmr index
    assert_error_line index
    run -2 --separate-stderr cmr index frobnicate
    [[ "$stderr" == "cmr-index: unknown command 'frobnicate'"* ]]
    run -2 --separate-stderr cmr index build "$CAT"
    [[ "$stderr" == "cmr-index: build needs --out INDEX"* ]]
    run -2 --separate-stderr cmr index build --out "$TMP/x" --type kd "$CAT"
    [[ "$stderr" == "cmr-index: --type takes flat, hnsw or ivfpq, got 'kd'"* ]]
    run -2 --separate-stderr cmr index query --index "$TMP/x" -k 0 "$CAT"
    [[ "$stderr" == "cmr-index: -k takes an integer in [1, 4000], got '0'"* ]]
    run -2 --separate-stderr cmr index query "$CAT"
    [[ "$stderr" == "cmr-index: query needs --index INDEX"* ]]
    run -2 --separate-stderr cmr index add --index "$TMP/x" --type hnsw "$CAT"
    run -2 --separate-stderr cmr index build --out "$TMP/x" -k 3 "$CAT"
    run -2 --separate-stderr cmr index info
    [ ! -e "$TMP/x" ]
}

@test "index: build, info, query --tsv and --json" {
    run -0 --separate-stderr cmr index build --out "$TMP/cat.cmri" "$CAT"
    [[ "$stderr" == *"1 of 60 tracks have an all-zero vector"* ]]
    [ "$(head -c 4 "$TMP/cat.cmri")" = CMRI ]
    [ -z "$(ls -A "$TMP" | grep -v '^cat.cmri$')" ] # no temporary left
    run -0 cmr index info "$TMP/cat.cmri"
    [[ "$output" == *"tracks    60"* ]]
    [[ "$output" == *"dim       8 (summary frames)"* ]]
    [[ "$output" == *'type      flat (FAISS "Flat")'* ]]
    run -0 --separate-stderr cmr index query --index "$TMP/cat.cmri" --tsv -k 4 --exclude-self "$CAT"
    [ "${lines[0]}" = "query_track	rank	track	score" ]
    [ "${#lines[@]}" -eq $((1 + 60 * 4)) ]
    # no query finds itself; ranks 1..4; scores fall
    [ -z "$(awk -F'\t' 'NR > 1 && $1 == $3' <<<"$output")" ]
    awk -F'\t' 'NR > 1 { if ($2 != (NR - 2) % 4 + 1) exit 1; if ($2 > 1 && $4 > prev + 1e-9) exit 1; prev = $4 }' <<<"$output"
    # without --exclude-self each track's nearest scores 1 (itself, or t05 for its
    # duplicate t17: ties go by catalogue order), but t23's (zero: 0 with all)
    run -0 --separate-stderr cmr index query --index "$TMP/cat.cmri" --tsv -k 1 "$CAT"
    [ "$(awk -F'\t' 'NR > 1 && $4 > 0.999999' <<<"$output" | wc -l)" -eq 59 ]
    [ "$(awk -F'\t' '$1 == "t17" { print $3 }' <<<"$output")" = t05 ]
    [ "$(awk -F'\t' '$1 == "t23" { print $4 }' <<<"$output")" = 0.000000 ]
    run -0 --separate-stderr cmr index query --index "$TMP/cat.cmri" --json -k 2 "$CAT"
    [ "${#lines[@]}" -eq 60 ]
    [[ "${lines[0]}" == '{"query":"t00","index":0,"neighbours":[{"rank":1,"track":"t00","score":1}'* ]]
}

@test "index: neighbours frames: one per query, the tracks in meta, end frames kept" {
    cmr index build --out "$TMP/cat.cmri" -q "$CAT"
    cmr index query --index "$TMP/cat.cmri" -k 3 --exclude-self "$CAT" >"$TMP/n.msgpack"
    run -0 --separate-stderr cmr dump "$TMP/n.msgpack"
    [ "$(grep -c '^tensor kind=neighbours .* shape=\[3\]' <<<"$output")" -eq 60 ]
    [ "$(grep -c '^end track=' <<<"$output")" -eq 60 ]
    [[ "$output" == *'"neighbour.3":'* ]]
    # the frames say what --tsv says
    tsv=$(cmr index query --index "$TMP/cat.cmri" -k 3 --exclude-self --tsv "$CAT" | awk -F'\t' 'NR == 2 { print $3 }')
    [[ "$output" == *"\"neighbour.1\":\"$tsv\""* ]]
}

# the rank of track X among every track but Q and X, by cmr-knn's scores:
# one playlist {Q, X}, Q first in stream order, all other tracks negatives,
# so MPR * (n - 2) = rank - 1 (ties count against X: its rank is the last
# position of its tie group)
knn_rank() {
    printf 'track\tplaylists\n%s\tp\n%s\tp\n' "$1" "$2" >"$TMP/pl.tsv"
    cmr knn -q --json -Q 1 -N all --playlists "$TMP/pl.tsv" "$CAT" |
        sed 's/.*"mpr":\([^,]*\),.*/\1/' | awk '{ printf "%.0f\n", $1 * 58 + 1 }'
}

@test "index: --type flat returns exactly cmr-knn's cosine ranking" {
    cmr index build --out "$TMP/cat.cmri" --type flat -q "$CAT"
    # t00 is first in the stream: cmr-knn takes it as the query of each playlist
    run -0 --separate-stderr cmr index query --index "$TMP/cat.cmri" -k 13 --exclude-self --tsv "$CAT"
    # rank, track, and the last rank with the same score (t05 and t17 tie, at 10 and 11)
    top=$(awk -F'\t' '$1 == "t00" { r[++n] = $2; t[n] = $3; s[n] = $4 }
        END { for (i = 1; i < n; i++) { j = i; while (j < n && s[j + 1] == s[i]) j++; print r[i], t[i], j } }' <<<"$output")
    [ "$(wc -l <<<"$top")" -eq 12 ]
    [[ "$top" == *"10 t05 11"*"11 t17 11"* ]]
    while read -r r x last; do
        got=$(knn_rank t00 "$x")
        [ "$got" = "$last" ] || { echo "$x: cmr-index rank $r (ties to $last), cmr-knn rank $got"; false; }
    done <<<"$top"
}

@test "index: hnsw and ivfpq build and answer; add appends new tracks" {
    mkframes --kind summary --dims 8 --count 1 --tracks 300 >"$TMP/big.msgpack"
    run -0 --separate-stderr cmr index build --out "$TMP/h.cmri" --type hnsw --threads 1 "$TMP/big.msgpack"
    run -0 cmr index info "$TMP/h.cmri"
    [[ "$output" == *'HNSW32,SQ8'* ]]
    run -0 --separate-stderr cmr index query --index "$TMP/h.cmri" -k 5 --tsv --threads 1 "$TMP/big.msgpack"
    [ "${#lines[@]}" -eq $((1 + 300 * 5)) ]
    run -0 --separate-stderr cmr index build --out "$TMP/p.cmri" --type ivfpq --nlist 16 --pq-m 4 --threads 1 \
        "$TMP/big.msgpack"
    run -0 cmr index info "$TMP/p.cmri"
    [[ "$output" == *'IVF16,PQ4np'* ]]
    # --refine: the PQ search's R x k best re-ranked by 8-bit codes
    run -0 --separate-stderr cmr index build --out "$TMP/r.cmri" --type ivfpq --nlist 16 --pq-m 4 --refine 4 \
        --threads 1 "$TMP/big.msgpack"
    run -0 cmr index info "$TMP/r.cmri"
    [[ "$output" == *'IVF16,PQ4np,Refine(SQ8)'* ]]
    [[ "$output" == *'re-ranked by 8-bit codes: 4 x k candidates'* ]]
    # (tests/unit/test-index checks that re-ranking finds more true neighbours)
    run -0 --separate-stderr cmr index query --index "$TMP/r.cmri" -k 5 --tsv --threads 1 --refine 8 "$TMP/big.msgpack"
    [ "${#lines[@]}" -eq $((1 + 300 * 5)) ]
    run -1 --separate-stderr cmr index query --index "$TMP/p.cmri" -k 5 --refine 4 "$TMP/big.msgpack"
    [[ "$stderr" == "cmr-index: index: refine applies to an ivfpq index built with it"* ]]
    run -1 --separate-stderr cmr index build --out "$TMP/x.cmri" --type hnsw --refine 4 "$TMP/big.msgpack"
    [[ "$stderr" == *"refine should be in [0, 1000], and > 0 only with ivfpq"* ]]
    [ ! -e "$TMP/x.cmri" ]
    # add: 60 more tracks to a flat index of the 300
    cmr index build --out "$TMP/f.cmri" -q "$TMP/big.msgpack"
    run -0 --separate-stderr cmr index add --index "$TMP/f.cmri" "$CAT"
    run -0 cmr index info "$TMP/f.cmri"
    [[ "$output" == *"tracks    360"* ]]
    # a track already there: refused, the index unchanged
    cp "$TMP/f.cmri" "$TMP/before.cmri"
    run -1 --separate-stderr cmr index add --index "$TMP/f.cmri" "$CAT"
    [[ "$stderr" == *'index: track "t00" is already in the index'* ]]
    cmp "$TMP/f.cmri" "$TMP/before.cmri"
}

@test "index: bad input gives one clear line and exit 1" {
    cmr index build --out "$TMP/cat.cmri" -q "$CAT"
    # dimension mismatch
    mkframes --kind summary --dims 16 --count 1 --tracks 2 >"$TMP/d16.msgpack"
    run -1 --separate-stderr cmr index query --index "$TMP/cat.cmri" "$TMP/d16.msgpack"
    [[ "$stderr" == "cmr-index: $TMP/d16.msgpack: track \"track0\": dimension mismatch: a summary frame of 16 values, the index holds vectors of 8"* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
    mkframes --kind summary --dims 16 --count 1 --tracks 2 >"$TMP/d16.msgpack"
    run -1 --separate-stderr cmr index add --index "$TMP/cat.cmri" "$TMP/d16.msgpack"
    [[ "$stderr" == *"dimension mismatch: vectors of 16 values, the index holds 8"* ]]
    # kind mismatch
    mkframes --kind embedding --dims 8 --count 1 --tracks 2 >"$TMP/e8.msgpack"
    run -1 --separate-stderr cmr index query --index "$TMP/cat.cmri" "$TMP/e8.msgpack"
    [[ "$stderr" == *'a embedding frame, but the index holds summary'* ]]
    # empty catalogue
    mkframes --kind summary --dims 8 --count 1 --tracks 0 >"$TMP/empty.msgpack"
    run -1 --separate-stderr cmr index build --out "$TMP/e.cmri" "$TMP/empty.msgpack"
    [[ "$stderr" == "cmr-index: $TMP/empty.msgpack: the catalogue is empty: no summary or embedding frames" ]]
    [ ! -e "$TMP/e.cmri" ]
    # k larger than the catalogue
    run -1 --separate-stderr cmr index query --index "$TMP/cat.cmri" -k 61 "$CAT"
    [[ "$stderr" == "cmr-index: $TMP/cat.cmri: k = 61, but the index holds 60 tracks" ]]
    run -1 --separate-stderr cmr index query --index "$TMP/cat.cmri" -k 60 --exclude-self "$CAT"
    [[ "$stderr" == *"k = 60, but the index holds 60 tracks and --exclude-self may leave one out" ]]
    # NaN vectors, in the catalogue and in a query
    run -1 --separate-stderr cmr index build --out "$TMP/n.cmri" "$EVAL/bad-nan.msgpack"
    [[ "$stderr" == *"NaN or infinite value"* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
    mkframes --kind summary --dims 8 --count 1 --tracks 2 --fill nan >"$TMP/nan.msgpack"
    run -1 --separate-stderr cmr index query --index "$TMP/cat.cmri" "$TMP/nan.msgpack"
    [ "$stderr" = "cmr-index: $TMP/nan.msgpack: track \"track0\": summary frame 0 has a NaN or infinite value" ]
    # a truncated index file
    head -c 500 "$TMP/cat.cmri" >"$TMP/trunc.cmri"
    run -1 --separate-stderr cmr index query --index "$TMP/trunc.cmri" "$CAT"
    [[ "$stderr" == "cmr-index: $TMP/trunc.cmri: truncated index file: 500 bytes, its header says "* ]]
    # a corrupt one: one byte flipped in the middle
    cp "$TMP/cat.cmri" "$TMP/bad.cmri"
    printf '\377' | dd of="$TMP/bad.cmri" bs=1 seek=700 conv=notrunc status=none
    run -1 --separate-stderr cmr index info "$TMP/bad.cmri"
    [ "$stderr" = "cmr-index: $TMP/bad.cmri: corrupt index file: CRC-32 mismatch" ]
    # not an index at all, and a missing one
    run -1 --separate-stderr cmr index info "$CAT"
    [[ "$stderr" == *"not a cmr index file"* ]]
    run -1 --separate-stderr cmr index query --index "$TMP/none.cmri" "$CAT"
    [[ "$stderr" == "cmr-index: $TMP/none.cmri: No such file or directory" ]]
    # more than one vector per track
    mkframes --kind embedding --dims 8 --count 3 --tracks 1 >"$TMP/e3.msgpack"
    run -1 --separate-stderr cmr index build --out "$TMP/x.cmri" "$TMP/e3.msgpack"
    [[ "$stderr" == *'has more than one embedding frame'*'cmr-summarize'* ]]
}

@test "index: --window queries the running mean of the last S seconds, every S seconds" {
    mkframes --kind embedding --dims 8 --count 1 --tracks 50 >"$TMP/cat.msgpack"
    cmr index build --out "$TMP/e.cmri" -q "$TMP/cat.msgpack"
    # 40 frames, offsets 0..39 mel frames at 16 kHz: 0.016 s apart
    mkframes --kind embedding --dims 8 --count 40 --tracks 1 >"$TMP/live.msgpack"
    run -0 --separate-stderr cmr index query --index "$TMP/e.cmri" -k 2 --tsv --window 0.1 --every 0.16 \
        "$TMP/live.msgpack"
    # 0.62 s of stream, one answer at the first frame and each 0.16 s after: 4
    [ "$(awk -F'\t' 'NR > 1 && $2 == 1' <<<"$output" | wc -l)" -eq 4 ]
    [[ "${lines[1]}" == "track0@0.0s	1	"* ]]
    # an index of summaries: the window's mean and std are the query
    mkframes --kind summary --dims 16 --count 1 --tracks 50 >"$TMP/sum.msgpack"
    cmr index build --out "$TMP/s.cmri" -q "$TMP/sum.msgpack"
    run -0 --separate-stderr cmr index query --index "$TMP/s.cmri" -k 2 --json --window 0.1 --every 0.16 \
        "$TMP/live.msgpack"
    [ "${#lines[@]}" -eq 4 ]
    [[ "${lines[1]}" == *'"time":0.1'* ]]
}

@test "index: shards answered apart and merged give the whole index's answer" {
    mkframes --kind summary --dims 8 --count 1 --tracks 40 >"$TMP/a.msgpack"
    cmr index build --out "$TMP/a.cmri" -q "$TMP/a.msgpack"
    cmr index build --out "$TMP/b.cmri" -q "$CAT"
    cp "$TMP/a.cmri" "$TMP/all.cmri"
    cmr index add --index "$TMP/all.cmri" -q "$CAT"
    for s in a b; do cmr index query --index "$TMP/$s.cmri" -k 7 --tsv "$CAT"; done |
        "$CMR_SRCDIR/pipelines/merge-neighbours.sh" 7 >"$TMP/merged.tsv"
    cmr index query --index "$TMP/all.cmri" -k 7 --tsv "$CAT" >"$TMP/whole.tsv"
    [ "$(wc -l <"$TMP/whole.tsv")" -eq $((1 + 60 * 7)) ]
    diff "$TMP/merged.tsv" "$TMP/whole.tsv"
    run -2 --separate-stderr "$CMR_SRCDIR/pipelines/merge-neighbours.sh" 0
}
