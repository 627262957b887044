#!/usr/bin/env bats
# cmr-summarize: per-track mean and population std (docs/evaluation.md)
load helpers

REF="$CMR_SRCDIR/tests/ref/eval"

@test "summarize: --help goes to stdout, exit 0" {
    run -0 --separate-stderr cmr summarize --help
    [[ "$output" == "Usage: cmr-summarize"* ]]
    [ -z "$stderr" ]
}

@test "summarize: unknown option is a usage error" {
    run -2 --separate-stderr cmr summarize --bogus "$REF/summary-in.msgpack"
    assert_error_line summarize
    [[ "$stderr" == *"unknown option '--bogus'"* ]]
}

@test "summarize: bad --values and --kind are usage errors" {
    run -2 --separate-stderr cmr summarize --text --values -1 "$REF/summary-in.msgpack"
    [[ "$stderr" == "cmr-summarize: --values takes an integer in [0, 1000000], got '-1'"* ]]
    run -2 --separate-stderr cmr summarize --text --values 2x "$REF/summary-in.msgpack"
    run -2 --separate-stderr cmr summarize --kind '' "$REF/summary-in.msgpack"
    [[ "$stderr" == "cmr-summarize: --kind takes a kind name"* ]]
    run -2 --separate-stderr cmr summarize a b
    [[ "$stderr" == *"at most one input file"* ]]
}

@test "summarize: mean and std (ddof=0) match numpy, embedding and mfcc rows" {
    run -0 --separate-stderr cmr summarize --text -n 3 "$REF/summary-in.msgpack"
    [ "$output" = "$(cat "$REF/summary-expected.txt")" ]
}

@test "summarize: one summary frame [2D] per track, metadata passed through, then the end frame" {
    cmr summarize "$REF/summary-in.msgpack" > "$TMP/s.cmr"
    run -0 --separate-stderr cmr dump "$TMP/s.cmr"
    [ "${#lines[@]}" -eq 9 ]
    [[ "${lines[0]}" == "header "*"cmr-summarize"* ]]
    [[ "${lines[1]}" == 'tensor kind=summary track="a" index=0 offset=0 '*'shape=[10]'*'"label":"La"'*'"rows":4'* ]]
    [[ "${lines[2]}" == 'end track="a" frames=1' ]]
    [[ "${lines[5]}" == 'tensor kind=summary track="c" '*'"rows":21'* ]]
}

@test "summarize: --kind refuses other kinds" {
    run -1 --separate-stderr cmr summarize --kind embedding "$REF/summary-in.msgpack"
    assert_error_line summarize
    [[ "$stderr" == *'track "c": expected embedding frames, got "mfcc"'* ]]
}

@test "summarize: the summary of a sine's audio rows: mean 0, std 0.5/sqrt(2)" {
    mk_sine "$TMP/a.wav" 1000 1
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | '$CMR_BINDIR/cmr-summarize' --text"
    IFS=$'\t' read -r track dim rows values <<<"$output"
    [ "$dim" = 2 ] && [ "$rows" = 16000 ]
    awk -v v="$values" 'BEGIN { split(v, x, ","); exit !(x[1] < 1e-3 && x[1] > -1e-3 && x[2] > 0.352 && x[2] < 0.3555) }'
}

@test "summarize: NaN, rank 3 and differing row lengths are data errors" {
    run -1 --separate-stderr cmr summarize --text "$REF/bad-nan.msgpack"
    [[ "$stderr" == 'cmr-summarize: track "b": embedding frame 0: summary: row 0, column 2 is nan' ]]
    run -1 --separate-stderr cmr summarize --text "$REF/bad-rank3.msgpack"
    [[ "$stderr" == *'has rank 3'* ]]
    run -1 --separate-stderr cmr summarize --text "$REF/bad-dims.msgpack"
    [[ "$stderr" == *'rows of 3 values, earlier frames 4'* ]]
}

@test "summarize: a track that failed upstream gets no summary, its end frame is passed on" {
    run -0 --separate-stderr cmr summarize --text "$REF/bad-failed.msgpack"
    [ "${#lines[@]}" -eq 2 ]
    [[ "$stderr" == *'track "b" failed upstream (cannot decode b.mp3): no summary'* ]]
    cmr summarize -q "$REF/bad-failed.msgpack" | cmr dump > "$TMP/d.txt"
    grep -q 'end track="b" frames=0 error="cannot decode b.mp3"' "$TMP/d.txt"
}

@test "summarize: empty and truncated input are data errors" {
    run -1 --separate-stderr cmr summarize --text /dev/null
    assert_error_line summarize
    head -c 300 "$REF/summary-in.msgpack" > "$TMP/t.cmr"
    run -1 --separate-stderr cmr summarize --text "$TMP/t.cmr"
    assert_error_line summarize
    run -1 --separate-stderr cmr summarize --text "$TMP/missing.cmr"
    [[ "$stderr" == *"No such file"* ]]
}

@test "summarize: | head -n1 ends cleanly" {
    run -0 bash -c "'$CMR_BINDIR/cmr-summarize' --text '$REF/summary-in.msgpack' | head -n1"
    [[ "$output" == "a"$'\t'"10"$'\t'"4"$'\t'* ]]
}

@test "summarize: summary frames are not summarised a second time (issue 11)" {
    run -0 bash -c "'$CMR_BINDIR/cmr-summarize' '$REF/summary-in.msgpack' > '$TMP/s.cmr'"
    run -1 --separate-stderr cmr summarize "$TMP/s.cmr"
    [[ "$stderr" == 'cmr-summarize: track "'*'": summary frame 0: the input is summarised already (cmr-summarize takes embeddings or other rows, not its own output)' ]]
    run -2 --separate-stderr cmr summarize --kind summary "$TMP/s.cmr"
    [ "${stderr_lines[0]}" = "cmr-summarize: --kind summary: summary frames are summarised already" ]
}
