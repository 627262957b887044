#!/usr/bin/env bats
# cmr-augment: per-row waveform augmentation of pair/sequence frames
# (docs/training.md). The effects themselves are measured in tests/unit/test-augment.c.
load helpers

MKFRAMES="${CMR_BUILDDIR:-$CMR_BINDIR/..}/tests/tools/cmr-mkframes"

# pairs.cmr: pair frames [2, 57600] of the given tracks (seconds each)
mk_pairs() {
    local out=$1 secs=$2 n=$3
    shift 3
    local files=()
    for i in $(seq 1 "$n"); do
        mk_music "$TMP/t$i.wav" "$secs"
        files+=("$TMP/t$i.wav")
    done
    cmr decode "${files[@]}" | cmr resample | cmr pair --seed 1 "$@" >"$out"
}

num() { sed -E "s/.*\"$1\":(-?[0-9.e+-]+).*/\1/"; }

@test "cmr-augment --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr augment --help
    [[ "$output" == "Usage: cmr-augment"* ]]
    [[ "$output" == *"--p-reverb"* ]]
    [ -z "$stderr" ]
}

@test "cmr-augment: bad options exit 2 with one message" {
    run -2 --separate-stderr cmr augment --bogus
    assert_error_line augment
    run -2 --separate-stderr cmr augment --p-reverb 1.5
    [[ "$stderr" == "cmr-augment: --p-reverb takes a number in [0, 1], got '1.5'"* ]]
    run -2 --separate-stderr cmr augment --p-noise x
    [[ "$stderr" == "cmr-augment: --p-noise takes a number in [0, 1], got 'x'"* ]]
    run -2 --separate-stderr cmr augment --pitch-set -2,x
    [[ "$stderr" == "cmr-augment: --pitch-set takes 1 to 32 comma-separated semitones in [-12, 12], got '-2,x'"* ]]
    run -2 --separate-stderr cmr augment --pitch-set 13
    [[ "$stderr" == "cmr-augment: --pitch-set takes"*"got '13'"* ]]
    run -2 --separate-stderr cmr augment --pitch-set 1,
    [[ "$stderr" == "cmr-augment: --pitch-set takes"* ]]
    run -2 --separate-stderr cmr augment --stretch-max 3
    [[ "$stderr" == "cmr-augment: --stretch-max takes a number in [0.5, 2], got '3'"* ]]
    run -2 --separate-stderr cmr augment --stretch-min 1.3
    [[ "$stderr" == "cmr-augment: --stretch-min (1.3) should not exceed --stretch-max (1.2)"* ]]
    run -2 --separate-stderr cmr augment --snr-min 40
    [[ "$stderr" == "cmr-augment: --snr-min (40) should not exceed --snr-max (30)"* ]]
    run -2 --separate-stderr cmr augment --room-min 60 --room-max 50
    [[ "$stderr" == "cmr-augment: each --*-min should not exceed its --*-max"* ]]
    run -2 --separate-stderr cmr augment --seconds -1
    [[ "$stderr" == "cmr-augment: --seconds takes a number in [0, 600], got '-1'"* ]]
    run -2 --separate-stderr cmr augment --seed
    [[ "$stderr" == "cmr-augment: option '--seed' needs a value"* ]]
    run -2 --separate-stderr cmr augment a b
    [[ "$stderr" == "cmr-augment: at most one input file"* ]]
}

@test "cmr-augment: pairs [2, 57600] become [2, 48000] with every row's parameters in info" {
    mk_pairs "$TMP/p.cmr" 5 2 -e 2
    run -0 bash -c "'$CMR_BINDIR/cmr-augment' --seed 3 '$TMP/p.cmr' | '$CMR_BINDIR/cmr-dump'"
    [ "${#lines[@]}" -eq 9 ]
    [[ "${lines[0]}" == *'cmr-augment{"seed":"3","p_pitch":"1","pitch_set":"-2,-1,1,2","p_stretch":"1","stretch":"0.8,1.2","p_reverb":"0.5",'*'"snr":"10,30","p_invert":"0.5","seconds":"3"}]' ]]
    for i in 1 3 5 7; do
        l=${lines[$i]}
        [[ "$l" == "tensor kind=pair "*" shape=[2,48000] "* ]]
        # the pair's own info is kept, each row's parameters are added
        [[ "$l" == *'"anchor_offset":'* ]]
        for r in 0 1; do
            p=$(echo "$l" | num "pitch.$r")
            s=$(echo "$l" | num "stretch.$r")
            [[ "$p" =~ ^-?[12]$ ]]
            awk -v s="$s" 'BEGIN { exit !(s >= 0.8 && s < 1.2) }'
            [[ "$l" == *"\"reverb.$r\":"[01]* ]] && [[ "$l" == *"\"noise.$r\":"[01]* ]] && [[ "$l" == *"\"invert.$r\":"[01]* ]]
        done
    done
    [[ "${lines[2]}" == "end track="*" frames=1" ]]
}

@test "cmr-augment: same seed, same bytes; another seed differs; rows of a self pair differ" {
    mk_pairs "$TMP/p.cmr" 5 2
    a=$(cmr augment --seed 5 "$TMP/p.cmr" | md5sum)
    b=$(cmr augment --seed 5 "$TMP/p.cmr" | md5sum)
    c=$(cmr augment --seed 6 "$TMP/p.cmr" | md5sum)
    [ "$a" = "$b" ] && [ "$a" != "$c" ]
    # anchor and positive of --strategy self are the same crop, augmented independently
    cmr augment --seed 5 "$TMP/p.cmr" | cmr dump --npy "$TMP/npy"
    f=$(ls "$TMP/npy/"*.npy | head -1)
    ! cmp -s <(tail -c +129 "$f" | head -c 192000) <(tail -c +129 "$f" | tail -c 192000)
}

@test "cmr-augment: a frame's augmentation does not depend on the other frames" {
    mk_pairs "$TMP/p.cmr" 5 3 --no-shuffle
    one() { cmr augment --seed 2 "$1" | cmr dump | grep '^tensor' | grep 't2.wav'; }
    # the second track alone (cmr-pair draws the same crop for it)
    cmr decode "$TMP/t2.wav" | cmr resample | cmr pair --seed 1 --no-shuffle >"$TMP/p2.cmr"
    [ "$(one "$TMP/p.cmr")" = "$(one "$TMP/p2.cmr")" ]
    [ -n "$(one "$TMP/p2.cmr")" ]
}

@test "cmr-augment: nothing applied keeps the first 48000 samples of each row, bit for bit" {
    mk_pairs "$TMP/p.cmr" 8 1 -s random
    cmr augment --p-pitch 0 --p-stretch 0 --p-reverb 0 --p-noise 0 --p-invert 0 "$TMP/p.cmr" | cmr dump --npy "$TMP/aug"
    cmr dump --npy "$TMP/in" "$TMP/p.cmr"
    a=$(ls "$TMP/aug/"*.npy) i=$(ls "$TMP/in/"*.npy)
    cmp <(tail -c +129 "$a" | head -c 192000) <(tail -c +129 "$i" | head -c 192000)
    cmp <(tail -c +129 "$a" | tail -c 192000) <(tail -c +129 "$i" | tail -c 230400 | head -c 192000)
}

@test "cmr-augment: probabilities and sets are obeyed" {
    mk_pairs "$TMP/p.cmr" 5 3 -e 2
    run -0 bash -c "'$CMR_BINDIR/cmr-augment' --p-reverb 1 --p-noise 0 --p-invert 1 --pitch-set 1 '$TMP/p.cmr' | '$CMR_BINDIR/cmr-dump' | grep '^tensor'"
    [ "${#lines[@]}" -eq 6 ]
    for l in "${lines[@]}"; do
        [[ "$l" == *'"pitch.0":1,'*'"reverb.0":1,'*'"noise.0":0,"invert.0":1,"pitch.1":1,'*'"reverb.1":1,'*'"noise.1":0,"invert.1":1'* ]]
        [[ "$l" != *'"snr.'* ]]
    done
}

@test "cmr-augment --seconds 0 keeps the crop length; a stretch past the slack is padded and counted" {
    mk_pairs "$TMP/p.cmr" 5 1
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-augment' --seconds 0 --stretch-min 1.1 '$TMP/p.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == *" shape=[2,57600] "* ]]
    [[ "${lines[1]}" == *'"pad.0":'* ]]
    [ -z "$stderr" ]
    cmr augment --stretch-min 2 --stretch-max 2 --p-pitch 0 "$TMP/p.cmr" 2>"$TMP/err" | cmr dump >"$TMP/out"
    [ "$(cat "$TMP/err")" = "cmr-augment: 2 of 2 rows came out of the time stretch shorter than --seconds and were zero-padded at the end (info pad.ROW)" ]
    grep -q '"pad.0":19200' "$TMP/out"
}

@test "cmr-augment: sequence frames are augmented row by row" {
    mk_music "$TMP/long.wav" 20
    cmr decode "$TMP/long.wav" | cmr resample | cmr pair -s sequence >"$TMP/s.cmr"
    run -0 bash -c "'$CMR_BINDIR/cmr-augment' '$TMP/s.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == "tensor kind=sequence "*" shape=[6,48000] "* ]]
    [[ "${lines[1]}" == *'"pitch.5":'* ]]
}

@test "cmr-augment: wrong input exits 1 with a message" {
    mk_music "$TMP/a.wav" 5
    cmr decode "$TMP/a.wav" | cmr resample >"$TMP/audio.cmr"
    run -1 --separate-stderr cmr augment "$TMP/audio.cmr"
    [[ "$stderr" == "cmr-augment: track \"$TMP/a.wav\": expected \"pair\" or \"sequence\" audio frames, got \"audio\""* ]]
    [ -x "$MKFRAMES" ] || skip "cmr-mkframes not built"
    "$MKFRAMES" --kind pair --dims 2,188,96 --count 1 >"$TMP/mel.cmr"
    run -1 --separate-stderr cmr augment "$TMP/mel.cmr"
    [[ "$stderr" == *"a pair frame of rank 3: cmr-augment works on audio [rows, samples]; put it before cmr-mel" ]]
    "$MKFRAMES" --kind pair --dims 2,1000 --count 1 --rate 0 >"$TMP/norate.cmr"
    run -1 --separate-stderr cmr augment "$TMP/norate.cmr"
    [[ "$stderr" == *"pair frame without a sample rate" ]]
    mk_pairs "$TMP/p.cmr" 5 1
    head -c 100000 "$TMP/p.cmr" >"$TMP/cut.cmr"
    run -1 --separate-stderr cmr augment "$TMP/cut.cmr"
    assert_error_line augment
    run -1 --separate-stderr cmr augment </dev/null
    [[ "$stderr" == *"empty input: no header frame"* ]]
}

@test "cmr-augment | head: ends quietly" {
    mk_pairs "$TMP/p.cmr" 5 1 -e 20
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-augment' '$TMP/p.cmr' | head -c 100 >/dev/null"
    [ -z "$stderr" ]
}
