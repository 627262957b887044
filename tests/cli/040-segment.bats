#!/usr/bin/env bats
# cmr-segment: mel streams -> fixed-length segments and runs (docs/filters.md#cmr-segment)
load helpers

MKFRAMES="$CMR_BUILDDIR/tests/tools/cmr-mkframes"
mkframes() { "$MKFRAMES" "$@"; }
segment() { "$CMR_BINDIR/cmr-segment" "$@"; }
dump() { "$CMR_BINDIR/cmr-dump" "$@"; }

# MK="mkframes options" seg [segment options]: the dump of the segmented stream.
# Row r, column f of the synthetic mel stream holds r * 128 + f.
seg() {
    set -o pipefail
    mkframes ${MK:-} | segment "$@" | dump -n "${VALUES:-3}"
}

@test "cmr-segment --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr segment --help
    [[ "${lines[0]}" == "Usage: cmr-segment [OPTION]... [FILE|-]" ]]
    [ -z "$stderr" ]
}

@test "cmr-segment: bad options are usage errors (2)" {
    run -2 --separate-stderr cmr segment --bogus
    [ "${stderr_lines[0]}" = "cmr-segment: unknown option '--bogus'" ]
    for bad in 0 100001 x 1.5 ""; do
        run -2 --separate-stderr cmr segment --frames "$bad"
        [ "${stderr_lines[0]}" = "cmr-segment: --frames takes an integer in [1, 100000], got '$bad'" ]
    done
    run -2 --separate-stderr cmr segment --hop 0
    [ "${stderr_lines[0]}" = "cmr-segment: --hop takes an integer in [1, 1000000], got '0'" ]
    run -2 --separate-stderr cmr segment --context 0
    [ "${stderr_lines[0]}" = "cmr-segment: --context takes an integer in [1, 4096], got '0'" ]
    run -2 --separate-stderr cmr segment --run-hop 2
    [ "${stderr_lines[0]}" = "cmr-segment: --run-hop needs --context" ]
}

@test "cmr-segment: refuses a terminal on stdout" {
    mkframes > "$TMP/m.cmr"
    run -2 script -qec "'$CMR_BINDIR/cmr-segment' '$TMP/m.cmr'" /dev/null
    [[ "$output" == *"cmr-segment: refusing to write binary frames to a terminal"* ]]
}

@test "cmr-segment: 400 mel rows -> 2 segments of [188, F], the tail dropped" {
    MK="--rows 400 --chunk 37 --features 4" run -0 --separate-stderr seg
    [ "${#lines[@]}" -eq 4 ]
    [[ "${lines[0]}" == *',cmr-segment{"frames":"188","hop":"188","context":"0","run_hop":"0","pad":"0"}]' ]]
    [[ "${lines[1]}" == 'tensor kind=segment track="track0" index=0 offset=0 rate=16000 shape=[188,4] min=0 max=23939 '*'data=[0,1,2,...]'* ]]
    [[ "${lines[2]}" == 'tensor kind=segment track="track0" index=1 offset=188 rate=16000 shape=[188,4] min=24064 max=48003 '*'data=[24064,24065,24066,...]'* ]]
    [ "${lines[3]}" = 'end track="track0" frames=2' ]
}

@test "cmr-segment: the output does not depend on the input chunking" {
    for c in 1 37 188 400; do
        mkframes --rows 1000 --chunk "$c" --features 8 | segment --hop 61 | dump -n 100000 > "$TMP/c$c.txt"
    done
    [ "$(grep -c '^tensor' "$TMP/c400.txt")" -eq 14 ]
    cmp "$TMP/c1.txt" "$TMP/c400.txt"
    cmp "$TMP/c37.txt" "$TMP/c400.txt"
    cmp "$TMP/c188.txt" "$TMP/c400.txt"
}

@test "cmr-segment --hop: overlapping and gapped segments start every hop rows" {
    MK="--rows 400 --chunk 50 --features 2" run -0 --separate-stderr seg --hop 94
    [ "$(grep -c '^tensor' <<< "$output")" -eq 3 ]
    [[ "${lines[3]}" == *' index=2 offset=188 '*'data=[24064,'* ]]
    MK="--rows 400 --chunk 50 --features 2" run -0 --separate-stderr seg --frames 10 --hop 50
    [ "$(grep -c '^tensor' <<< "$output")" -eq 8 ]
    [[ "${lines[8]}" == *' index=7 offset=350 '*' shape=[10,2] min=44800 max=45953 '* ]]
}

@test "cmr-segment --pad: the last, short segment is zero-padded and says how much is real" {
    MK="--rows 400 --chunk 37 --features 4" run -0 --separate-stderr seg --pad
    [ "${#lines[@]}" -eq 5 ]
    [[ "${lines[3]}" == 'tensor kind=segment track="track0" index=2 offset=376 '*' min=0 max=51075 '*'data=[48128,'*' info={"valid_frames":24}' ]]
    [ "${lines[4]}" = 'end track="track0" frames=3' ]
    # a track that fits exactly gets no padded segment
    MK="--rows 376 --features 4" run -0 --separate-stderr seg --pad
    [ "${lines[-1]}" = 'end track="track0" frames=2' ]
    # a short track gets one padded segment
    MK="--rows 5 --features 4" run -0 --separate-stderr seg --pad
    [[ "${lines[1]}" == *' info={"valid_frames":5}' ]]
}

@test "cmr-segment --context: runs of N segments as [N, frames, F] sequence frames" {
    MK="--rows 400 --chunk 33 --features 4" VALUES=41 run -0 --separate-stderr seg --frames 10 --hop 5 --context 3
    [[ "${lines[0]}" == *'cmr-segment{"frames":"10","hop":"5","context":"3","run_hop":"3","pad":"0"}]' ]]
    # runs cover 20 rows and start every 3 * 5 = 15 rows: (400 - 20) / 15 + 1 = 26 runs
    [ "$(grep -c '^tensor kind=sequence' <<< "$output")" -eq 26 ]
    [[ "${lines[2]}" == 'tensor kind=sequence track="track0" index=1 offset=15 rate=16000 shape=[3,10,4] '* ]]
    # element [1][0][0] of run 1 is row 15 + 5 = 20: 20 * 128 = 2560
    [[ "${lines[2]}" =~ data=\[([^]]*)\] ]]
    IFS=, read -ra v <<< "${BASH_REMATCH[1]}"
    [ "${v[0]}" = 1920 ]
    [ "${v[40]}" = 2560 ]
    [ "${lines[-1]}" = 'end track="track0" frames=26' ]
    # --run-hop 1: runs start every segment hop
    MK="--rows 400 --features 4" run -0 --separate-stderr seg --frames 10 --hop 5 --context 3 --run-hop 1
    [ "${lines[-1]}" = 'end track="track0" frames=77' ]
}

@test "cmr-segment: tracks shorter than one segment give none, counted in one warning" {
    MK="--rows 100 --tracks 3 --features 4" run -0 --separate-stderr seg
    [ "${#lines[@]}" -eq 4 ]
    [ "${lines[1]}" = 'end track="track0" frames=0' ]
    [ "${stderr_lines[0]}" = "cmr-segment: 3 tracks shorter than one segment (188 rows) gave none" ]
    MK="--rows 100 --tracks 3 --features 4" run -0 --separate-stderr seg -q
    [ -z "$stderr" ]
}

@test "cmr-segment: mfcc streams are cut the same way, into \"segment\" frames" {
    MK="--kind mfcc --rows 400 --features 40" run -0 --separate-stderr seg
    [[ "${lines[1]}" == 'tensor kind=segment track="track0" index=0 offset=0 rate=16000 shape=[188,40] '* ]]
}

@test "cmr-segment: metadata and info of the segment's first row pass through; end errors too" {
    MK="--rows 400 --features 2 --meta split=valid --info pitch=2 --end-error oops" run -0 --separate-stderr seg --pad
    [[ "${lines[1]}" == *' meta={"split":"valid"} info={"pitch":2}' ]]
    # a failed track is not padded
    [ "$(grep -c '^tensor' <<< "$output")" -eq 2 ]
    [ "${lines[-1]}" = 'end track="track0" frames=2 error="oops"' ]
}

@test "cmr-segment: wrong kind, wrong rank, gaps are exit 1" {
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind audio | '$CMR_BINDIR/cmr-segment' > /dev/null"
    [ "${stderr_lines[0]}" = 'cmr-segment: track "track0": expected "mel" or "mfcc" frames, got "audio" (frame 0 of the track)' ]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind mel --dims 10,4,2 | '$CMR_BINDIR/cmr-segment' > /dev/null"
    [ "${stderr_lines[0]}" = 'cmr-segment: track "track0": mel frame 0 should have shape [T, F] with F >= 1' ]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --gap | '$CMR_BINDIR/cmr-segment' > /dev/null"
    [ "${stderr_lines[0]}" = 'cmr-segment: track "track0": mel frame 1 starts at row 101, expected 100 (gaps and overlaps cannot be segmented)' ]
}

@test "cmr-segment: empty input and truncated streams are exit 1" {
    run -1 --separate-stderr bash -c ": | '$CMR_BINDIR/cmr-segment' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-segment: "*"empty input: no header frame" ]]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --rows 1000 | head -c 3000 | '$CMR_BINDIR/cmr-segment' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-segment: "*"stream ends inside a frame"* ]]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --no-end | '$CMR_BINDIR/cmr-segment' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-segment: "*'stream ends inside track "track0" (no end frame)' ]]
}

@test "cmr-segment: a reader that stops early (head) ends it quietly" {
    run bash -c "'$MKFRAMES' --rows 20000 --tracks 3 | '$CMR_BINDIR/cmr-segment' | head -c 1000 | wc -c"
    [ "$output" -eq 1000 ]
    run bash -c "'$MKFRAMES' --rows 20000 --tracks 3 | '$CMR_BINDIR/cmr-segment' | '$CMR_BINDIR/cmr-dump' | head -n1"
    [[ "$output" == "header version=1 "* ]]
}
