#!/usr/bin/env bats
# cmr-dump: frames as text, or as .npy files with an index (docs/filters.md#cmr-dump)
load helpers

MKFRAMES="$CMR_BUILDDIR/tests/tools/cmr-mkframes"
mkframes() { "$MKFRAMES" "$@"; }
dump() { "$CMR_BINDIR/cmr-dump" "$@"; }

# npy_header FILE: the header dict of a .npy file, trailing padding removed
npy_header() {
    head -c 128 "$1" | tail -c +11 | tr -d '\n' | sed 's/ *$//'
}

# the temporaries a failed run must not leave behind
no_temporaries() {
    [ -z "$(find "$1" -name '.*' -type f)" ]
}

@test "cmr-dump --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr dump --help
    [[ "${lines[0]}" == "Usage: cmr-dump [OPTION]... [FILE|-]" ]]
    [ -z "$stderr" ]
}

@test "cmr-dump: bad options are usage errors (2)" {
    run -2 --separate-stderr cmr dump --bogus
    [ "${stderr_lines[0]}" = "cmr-dump: unknown option '--bogus'" ]
    for bad in -1 x 1000001 ""; do
        run -2 --separate-stderr cmr dump --values "$bad"
        [ "${stderr_lines[0]}" = "cmr-dump: --values takes an integer in [0, 1000000], got '$bad'" ]
    done
    run -2 --separate-stderr cmr dump --npy ""
    [ "${stderr_lines[0]}" = "cmr-dump: --npy takes a directory, got ''" ]
    run -2 --separate-stderr cmr dump a b
    [ "${stderr_lines[0]}" = "cmr-dump: at most one input file" ]
}

@test "cmr-dump: one line per frame: header, tensor, end" {
    mkframes --rows 3 --features 2 --chunk 2 --meta split=train --info gain=0.5 > "$TMP/s.cmr"
    run -0 --separate-stderr cmr dump "$TMP/s.cmr"
    [ "${#lines[@]}" -eq 4 ]
    [ "${lines[0]}" = 'header version=1 provenance=[cmr-mkframes{}]' ]
    [ "${lines[1]}" = 'tensor kind=mel track="track0" index=0 offset=0 rate=16000 shape=[2,2] min=0 max=129 mean=64.5 data=[0,1,128,129] meta={"split":"train"} info={"gain":0.5}' ]
    [ "${lines[2]}" = 'tensor kind=mel track="track0" index=1 offset=2 rate=16000 shape=[1,2] min=256 max=257 mean=256.5 data=[256,257] meta={"split":"train"} info={"gain":0.5}' ]
    [ "${lines[3]}" = 'end track="track0" frames=2' ]
    run -0 --separate-stderr cmr dump --values 1 "$TMP/s.cmr"
    [[ "${lines[1]}" == *' data=[0,...] '* ]]
    run -0 --separate-stderr cmr dump --values 0 < "$TMP/s.cmr"
    [[ "${lines[1]}" == *' data=[...] '* ]]
}

@test "cmr-dump: strings are JSON-quoted, errors shown" {
    mk_sine "$TMP/a.wav" 440 0.1
    printf 'path\ttrack\tnote\na.wav\tsay "hi"\\now\tx\\y\nmissing.wav\tgone\t\n' > "$TMP/l.tsv"
    run -1 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' -k --list '$TMP/l.tsv' 2>/dev/null | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == 'tensor kind=audio track="say \"hi\"\\now" '*' meta={"note":"x\\y"} info={}' ]]
    [ "${lines[3]}" = "end track=\"gone\" frames=0 error=\"$TMP/missing.wav: No such file or directory\"" ]
}

@test "cmr-dump --npy: audio streams are joined along time: (n, channels)" {
    mk_sine "$TMP/a.wav" 440 1 44100 2
    "$CMR_BINDIR/cmr-decode" --chunk 10000 "$TMP/a.wav" > "$TMP/a.cmr"
    run -0 --separate-stderr cmr dump --npy "$TMP/out" "$TMP/a.cmr"
    [ -z "$output" ]
    f=$(cut -f2 "$TMP/out/index.tsv" | sed -n 2p)
    [ "$f" = "$(echo "${TMP#/}/a.wav" | tr / _).npy" ]
    [ "$(npy_header "$TMP/out/$f")" = "{'descr': '<f4', 'fortran_order': False, 'shape': (44100, 2), }" ]
    [ "$(head -c 8 "$TMP/out/$f" | od -An -c | tr -s ' ')" = " 223 N U M P Y 001 \\0" ]
    [ "$(stat -c %s "$TMP/out/$f")" -eq $((128 + 44100 * 2 * 4)) ]
    # the data are the decoded samples, in order: compare sample 10001 (frame 1, left)
    want=$("$CMR_BINDIR/cmr-dump" -n 3 "$TMP/a.cmr" | sed -n 3p | sed 's/.*data=\[\([^,]*\),.*/\1/')
    got=$(tail -c +129 "$TMP/out/$f" | od -An -f -j $((10000 * 2 * 4)) -N 4 | tr -d ' ')
    awk -v a="$want" -v b="$got" 'BEGIN { d = a - b; exit !(d < 1e-6 && d > -1e-6 && a != 0) }'
    no_temporaries "$TMP/out"
}

@test "cmr-dump --npy: mel streams join along time, segments stack on a new axis" {
    mkframes --rows 500 --chunk 77 --features 96 > "$TMP/mel.cmr"
    run -0 --separate-stderr cmr dump --npy "$TMP/mel" "$TMP/mel.cmr"
    [ "$(npy_header "$TMP/mel/track0.npy")" = "{'descr': '<f4', 'fortran_order': False, 'shape': (500, 96), }" ]
    # row 3, column 5 holds 3 * 128 + 5 = 389
    [ "$(tail -c +129 "$TMP/mel/track0.npy" | od -An -f -j $(( (3 * 96 + 5) * 4 )) -N 4 | tr -d ' ')" = 389 ]
    "$CMR_BINDIR/cmr-segment" "$TMP/mel.cmr" > "$TMP/seg.cmr"
    run -0 --separate-stderr cmr dump --npy "$TMP/seg" "$TMP/seg.cmr"
    [ "$(npy_header "$TMP/seg/track0.npy")" = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 188, 96), }" ]
    mkframes --kind embedding --dims 128 --count 7 --tracks 2 > "$TMP/emb.cmr"
    run -0 --separate-stderr cmr dump --npy "$TMP/emb" "$TMP/emb.cmr"
    [ "$(npy_header "$TMP/emb/track1.npy")" = "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 128), }" ]
    [ "$(cat "$TMP/emb/index.tsv")" = "$(printf 'track\tfile\ntrack0\ttrack0.npy\ntrack1\ttrack1.npy')" ]
}

@test "cmr-dump --npy: index.tsv has one column per metadata key, escaped" {
    mk_sine "$TMP/a.wav" 440 0.1
    mk_sine "$TMP/b.wav" 440 0.1
    printf 'path\ttrack\tsplit\tfile\na.wav\tA\ttraining\tx\\y\nb.wav\tB\ttest\t\n' > "$TMP/l.tsv"
    "$CMR_BINDIR/cmr-decode" --list "$TMP/l.tsv" | dump --npy "$TMP/out"
    [ "$(cat "$TMP/out/index.tsv")" = "$(printf 'track\tfile\tsplit\tmeta.file\nA\tA.npy\ttraining\tx\\\\y\nB\tB.npy\ttest\t')" ]
}

@test "cmr-dump --npy: file names are safe and unique" {
    mk_sine "$TMP/a.wav" 440 0.1
    printf 'path\ttrack\na.wav\t/data/x y/Song #1.mp3\na.wav\t../../etc/passwd\na.wav\t.hidden\na.wav\t-rf\na.wav\tA.wav\na.wav\ta.wav\na.wav\t???\na.wav\ttrack\n' > "$TMP/l.tsv"
    "$CMR_BINDIR/cmr-decode" --list "$TMP/l.tsv" | dump --npy "$TMP/out"
    run -0 cut -f2 "$TMP/out/index.tsv"
    [ "${lines[1]}" = "data_x_y_Song_1.mp3.npy" ]
    [ "${lines[2]}" = "etc_passwd.npy" ]
    [ "${lines[3]}" = "hidden.npy" ]
    [ "${lines[4]}" = "rf.npy" ]
    [ "${lines[5]}" = "A.wav.npy" ]
    [ "${lines[6]}" = "a.wav-2.npy" ]
    [ "${lines[7]}" = "track.npy" ]
    [ "${lines[8]}" = "track-2.npy" ]
    [ "$(ls -A "$TMP/out" | wc -l)" -eq 9 ]
}

@test "cmr-dump --npy: tracks without frames or with errors get no file, with a warning" {
    mk_sine "$TMP/a.wav" 440 0.1
    # cmr-decode exits 1; cmr-dump itself succeeds
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' -k '$TMP/a.wav' '$TMP/nope.wav' 2>/dev/null | '$CMR_BINDIR/cmr-dump' --npy '$TMP/out'"
    [ "$stderr" = "cmr-dump: track \"$TMP/nope.wav\" failed upstream ($TMP/nope.wav: No such file or directory): no .npy written
cmr-dump: 1 track failed upstream and got no .npy" ]
    [ "$(wc -l < "$TMP/out/index.tsv")" -eq 2 ]
    mkframes --rows 10 --tracks 2 | "$CMR_BINDIR/cmr-segment" -q > "$TMP/short.cmr"
    run -0 --separate-stderr cmr dump --npy "$TMP/short" "$TMP/short.cmr"
    [ "${stderr_lines[0]}" = "cmr-dump: 2 tracks had no frames and got no .npy" ]
    [ "$(cat "$TMP/short/index.tsv")" = "$(printf 'track\tfile')" ]
}

@test "cmr-dump --npy: frames that do not fit one array are exit 1, nothing half-written" {
    printf 'x' > "$TMP/file"
    run -1 --separate-stderr bash -c "'$MKFRAMES' | '$CMR_BINDIR/cmr-dump' --npy '$TMP/file'"
    [ "${stderr_lines[0]}" = "cmr-dump: $TMP/file: not a directory" ]
    run -1 --separate-stderr bash -c "'$MKFRAMES' | '$CMR_BINDIR/cmr-dump' --npy '$TMP/no/such/dir'"
    [ "${stderr_lines[0]}" = "cmr-dump: $TMP/no/such/dir: cannot create directory: No such file or directory" ]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --gap | '$CMR_BINDIR/cmr-dump' --npy '$TMP/gap'"
    [ "${stderr_lines[0]}" = 'cmr-dump: track "track0": mel frame 1 starts at offset 101, expected 100; cannot join a stream with gaps or overlaps' ]
    [ ! -e "$TMP/gap/index.tsv" ]
    no_temporaries "$TMP/gap"
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind embedding --dims 4,3 --count 3 --dims-change | '$CMR_BINDIR/cmr-dump' --npy '$TMP/mix'"
    [ "${stderr_lines[0]}" = 'cmr-dump: track "track0": frame 1 is embedding [4,4], the first frame was embedding [4,3]; cannot put them in one array' ]
    [ ! -e "$TMP/mix/index.tsv" ]
    no_temporaries "$TMP/mix"
}

@test "cmr-dump --npy: a truncated stream is exit 1; finished tracks stay, no index" {
    mkframes --tracks 3 --rows 1000 > "$TMP/s.cmr"
    head -c $(( $(stat -c %s "$TMP/s.cmr") - 1000 )) "$TMP/s.cmr" > "$TMP/t.cmr"
    run -1 --separate-stderr cmr dump --npy "$TMP/out" "$TMP/t.cmr"
    [[ "${stderr_lines[0]}" == "cmr-dump: $TMP/t.cmr: frame "*"stream ends inside a frame"* ]]
    [ -e "$TMP/out/track0.npy" ] && [ -e "$TMP/out/track1.npy" ] && [ ! -e "$TMP/out/track2.npy" ]
    [ ! -e "$TMP/out/index.tsv" ]
    no_temporaries "$TMP/out"
}

@test "cmr-dump: empty input, garbage and truncated input are exit 1" {
    run -1 --separate-stderr bash -c ": | '$CMR_BINDIR/cmr-dump'"
    [[ "${stderr_lines[0]}" == "cmr-dump: stdin: frame 1 (byte 0): empty input: no header frame" ]]
    run -1 --separate-stderr bash -c "echo hello | '$CMR_BINDIR/cmr-dump'"
    [[ "${stderr_lines[0]}" == "cmr-dump: stdin: "* ]]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --rows 1000 | head -c 100 | '$CMR_BINDIR/cmr-dump'"
    [[ "${stderr_lines[0]}" == "cmr-dump: stdin: "*"stream ends inside a frame"* ]]
    run -1 --separate-stderr cmr dump "$TMP/missing.cmr"
    [ "${stderr_lines[0]}" = "cmr-dump: $TMP/missing.cmr: No such file or directory" ]
}

@test "cmr-dump: head -n1 on its output ends it quietly" {
    run bash -c "'$MKFRAMES' --rows 100000 --chunk 10 --tracks 3 | '$CMR_BINDIR/cmr-dump' | head -n1"
    [ "$output" = 'header version=1 provenance=[cmr-mkframes{}]' ]
    run bash -c "'$MKFRAMES' --rows 100000 --chunk 10 | '$CMR_BINDIR/cmr-dump' | head -c 1000 | wc -c"
    [ "$output" -eq 1000 ]
}

@test "issue 2: decode | resample | mel | segment | dump --npy gives (n, 188, 96) arrays" {
    [ -x "$CMR_BINDIR/cmr-mel" ] || skip "cmr-mel not built"
    mk_music "$TMP/song.wav" 10 44100
    sox -q "$TMP/song.wav" "$TMP/song.mp3" 2>/dev/null || cp "$TMP/song.wav" "$TMP/song.mp3"
    run -0 --separate-stderr bash -c "set -o pipefail; cd '$TMP' && '$CMR_BINDIR/cmr-decode' song.mp3 | '$CMR_BINDIR/cmr-resample' | \
        '$CMR_BINDIR/cmr-mel' | '$CMR_BINDIR/cmr-segment' | '$CMR_BINDIR/cmr-dump' --npy out/"
    [ "$(cat "$TMP/out/index.tsv")" = "$(printf 'track\tfile\nsong.mp3\tsong.mp3.npy')" ]
    # 10 s at 16 kHz: 626 mel frames -> 3 segments
    [ "$(npy_header "$TMP/out/song.mp3.npy")" = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 188, 96), }" ]
    [ "$(stat -c %s "$TMP/out/song.mp3.npy")" -eq $((128 + 3 * 188 * 96 * 4)) ]
}

@test "cmr-dump: a string that is not UTF-8, or a key given twice, is refused by the reader (issue 11 I)" {
    mkframes --kind mel --rows 2 --chunk 2 --features 2 > "$TMP/a.cmr"
    # track "track0" -> "\xff\xfeack0"
    perl -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\xa6track0/\xa6\xff\xfeack0/g' "$TMP/a.cmr" > "$TMP/bad.cmr"
    run -1 --separate-stderr cmr dump "$TMP/bad.cmr"
    [[ "$stderr" == "cmr-dump: $TMP/bad.cmr: frame 2 (byte "*"): track is not valid UTF-8 (byte 0xff at offset 0)" ]]
    [[ "$output" != *$'\xff'* ]]
    # "index" renamed "track": the frame has the key "track" twice
    perl -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\xa5index/\xa5track/' "$TMP/a.cmr" > "$TMP/dup.cmr"
    run -1 --separate-stderr cmr dump "$TMP/dup.cmr"
    [[ "$stderr" == "cmr-dump: $TMP/dup.cmr: frame 2 (byte "*"): the frame has the key \"track\" twice" ]]
    # a UTF-8 track is printed as UTF-8 inside the JSON quotes
    perl -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\xa6track0/\xa6caf\xc3\xa90/g' "$TMP/a.cmr" > "$TMP/ok.cmr"
    run -0 --separate-stderr cmr dump "$TMP/ok.cmr"
    [[ "${lines[1]}" == 'tensor kind=mel track="café0" '* ]]
}
