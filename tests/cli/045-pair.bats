#!/usr/bin/env bats
# cmr-pair: anchor/positive crops per track and epoch (docs/training.md)
load helpers

# audio.cmr: mono 16 kHz "audio" frames of the given WAV files
mk_audio() {
    local out=$1
    shift
    cmr decode "$@" | cmr resample >"$out"
}

# the number after "KEY": in a cmr-dump line
num() { sed -E "s/.*\"$1\":(-?[0-9.e+-]+).*/\1/"; }

@test "cmr-pair --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr pair --help
    [[ "$output" == "Usage: cmr-pair"* ]]
    [[ "$output" == *"--strategy"* ]]
    [ -z "$stderr" ]
}

@test "cmr-pair: bad options exit 2 with one message" {
    run -2 --separate-stderr cmr pair --bogus
    assert_error_line pair
    [[ "$stderr" == *"unknown option '--bogus'"* ]]
    run -2 --separate-stderr cmr pair --strategy sideways
    [[ "$stderr" == "cmr-pair: --strategy takes self, adjacent, random or sequence, got 'sideways'"* ]]
    run -2 --separate-stderr cmr pair --epochs 0
    [[ "$stderr" == "cmr-pair: --epochs takes an integer in [1, 1000000], got '0'"* ]]
    run -2 --separate-stderr cmr pair --seed -3
    [[ "$stderr" == "cmr-pair: --seed takes a non-negative integer, got '-3'"* ]]
    run -2 --separate-stderr cmr pair --crop 2
    [[ "$stderr" == "cmr-pair: --crop (2 s) should be at least --segment (3 s)"* ]]
    run -2 --separate-stderr cmr pair --segment 3x
    [[ "$stderr" == "cmr-pair: --segment takes a number in [0.1, 60], got '3x'"* ]]
    run -2 --separate-stderr cmr pair --context 4
    [[ "$stderr" == "cmr-pair: --context and --predict need --strategy sequence"* ]]
    run -2 --separate-stderr cmr pair --strategy sequence --predict 0
    [[ "$stderr" == "cmr-pair: --predict takes an integer in [1, 60], got '0'"* ]]
    run -2 --separate-stderr cmr pair --strategy random --max-seconds 5
    [[ "$stderr" == "cmr-pair: --max-seconds 5 is below the 7.2 s the random strategy needs"* ]]
    run -2 --separate-stderr cmr pair --gap
    [[ "$stderr" == "cmr-pair: option '--gap' needs a value"* ]]
    run -2 --separate-stderr cmr pair a b
    [[ "$stderr" == "cmr-pair: at most one input file"* ]]
}

@test "cmr-pair: a missing input file exits 1" {
    run -1 --separate-stderr cmr pair "$TMP/nope.cmr"
    [[ "$stderr" == "cmr-pair: $TMP/nope.cmr: No such file or directory" ]]
}

@test "cmr-pair --strategy self: one [2, 57600] frame per track, anchor = positive" {
    mk_music "$TMP/a.wav" 5
    mk_audio "$TMP/audio.cmr" "$TMP/a.wav"
    cmr pair --seed 1 "$TMP/audio.cmr" >"$TMP/p.cmr"
    run -0 cmr dump "$TMP/p.cmr"
    [ "${#lines[@]}" -eq 3 ]
    [[ "${lines[0]}" == *'cmr-pair{"strategy":"self","seed":"1","epochs":"1","shuffle":"yes","segment_seconds":"3","crop_seconds":"3.6",'* ]]
    [[ "${lines[1]}" == "tensor kind=pair track=\"$TMP/a.wav\" index=0 offset="*" rate=16000 shape=[2,57600] "* ]]
    [[ "${lines[1]}" == *'"epoch":0,'* ]]
    [[ "${lines[1]}" == *'"swapped":0,"track_samples":80000}'* ]]
    a=$(echo "${lines[1]}" | num anchor_offset)
    p=$(echo "${lines[1]}" | num positive_offset)
    [ "$a" = "$p" ]
    [ "$a" -ge 0 ] && [ "$a" -le $((80000 - 57600)) ]
    [[ "${lines[1]}" == *" offset=$a "* ]]
    [ "${lines[2]}" = "end track=\"$TMP/a.wav\" frames=1" ]
}

@test "cmr-pair: the crop is the track's samples at anchor_offset" {
    # a ramp-free check: cut the same crop by hand from the dumped track
    mk_music "$TMP/a.wav" 5
    mk_audio "$TMP/audio.cmr" "$TMP/a.wav"
    cmr pair --seed 9 --crop 3 "$TMP/audio.cmr" | cmr dump --npy "$TMP/pairs"
    cmr dump --npy "$TMP/track" "$TMP/audio.cmr"
    a=$(cmr pair --seed 9 --crop 3 "$TMP/audio.cmr" | cmr dump | sed -n 2p | num anchor_offset)
    # .npy data start after a 128-byte header (NumPy format 1.0 with our header size)
    cmp <(tail -c +129 "$TMP/pairs/"*.npy | head -c $((48000 * 4))) \
        <(tail -c +129 "$TMP/track/"*.npy | tail -c +$((a * 4 + 1)) | head -c $((48000 * 4)))
}

@test "cmr-pair --strategy adjacent: the positive is 3.5 s (56000 samples) from the anchor, order swapped at random" {
    for i in 1 2 3 4 5 6; do mk_music "$TMP/t$i.wav" 9; done
    mk_audio "$TMP/audio.cmr" "$TMP"/t?.wav
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' --strategy adjacent --seed 2 --epochs 4 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump' | grep '^tensor'"
    [ "${#lines[@]}" -eq 24 ]
    swapped=0
    for l in "${lines[@]}"; do
        a=$(echo "$l" | num anchor_offset)
        p=$(echo "$l" | num positive_offset)
        s=$(echo "$l" | num swapped)
        if [ "$s" = 1 ]; then [ $((a - p)) -eq 56000 ]; swapped=$((swapped + 1)); else [ $((p - a)) -eq 56000 ]; fi
        [ "$a" -ge 0 ] && [ "$p" -ge 0 ] && [ $((a + 57600)) -le 144000 ] && [ $((p + 57600)) -le 144000 ]
    done
    [ "$swapped" -gt 3 ] && [ "$swapped" -lt 21 ]
}

@test "cmr-pair --strategy random: anchor and positive crops never overlap" {
    for i in 1 2 3 4; do mk_music "$TMP/t$i.wav" 12; done
    mk_audio "$TMP/audio.cmr" "$TMP"/t?.wav
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' -s random --seed 3 -e 5 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump' | grep '^tensor'"
    [ "${#lines[@]}" -eq 20 ]
    for l in "${lines[@]}"; do
        a=$(echo "$l" | num anchor_offset)
        p=$(echo "$l" | num positive_offset)
        d=$((a > p ? a - p : p - a))
        [ "$d" -ge 57600 ]
        [ $((a + 57600)) -le 192000 ] && [ $((p + 57600)) -le 192000 ]
    done
}

@test "cmr-pair --strategy sequence: [6, 57600] frames of consecutive segments" {
    mk_music "$TMP/long.wav" 20
    mk_audio "$TMP/audio.cmr" "$TMP/long.wav"
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' -s sequence '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[0]}" == *'"context":"4","predict":"2"'* ]]
    [[ "${lines[1]}" == "tensor kind=sequence "*" shape=[6,57600] "* ]]
    [[ "${lines[1]}" == *'"stride":48000,'* ]]
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' -s sequence --context 2 --predict 1 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == *" shape=[3,57600] "* ]]
}

@test "cmr-pair --epochs: one frame per track per epoch, epochs in order, new positions each epoch" {
    for i in 1 2 3; do mk_music "$TMP/t$i.wav" 6; done
    mk_audio "$TMP/audio.cmr" "$TMP"/t?.wav
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' --seed 5 -e 3 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump' | grep '^tensor' | sed -E 's/.*\"epoch\":([0-9]+).*/\1/' | tr '\n' ' '"
    [ "$output" = "0 0 0 1 1 1 2 2 2 " ]
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' --seed 5 -e 3 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump' | grep 't1.wav' | grep -o '\"anchor_offset\":[0-9]*' | sort -u | wc -l"
    [ "$output" -eq 3 ]
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' -e 3 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump' | grep -c '^end'"
    [ "$output" -eq 9 ]
}

@test "cmr-pair: the track order is shuffled per epoch; --no-shuffle keeps it" {
    for i in 1 2 3 4 5 6; do mk_music "$TMP/t$i.wav" 4; done
    mk_audio "$TMP/audio.cmr" "$TMP"/t?.wav
    order() { cmr pair "$@" "$TMP/audio.cmr" | cmr dump | grep '^tensor' | sed -E 's/.*\/(t[0-9])\.wav.*/\1/' | tr '\n' ' '; }
    [ "$(order --no-shuffle -e 2)" = "t1 t2 t3 t4 t5 t6 t1 t2 t3 t4 t5 t6 " ]
    [ "$(order --no-shuffle)" = "t1 t2 t3 t4 t5 t6 " ]
    shuffled=$(order --seed 1 -e 2)
    [ "$shuffled" != "t1 t2 t3 t4 t5 t6 t1 t2 t3 t4 t5 t6 " ]
    # every epoch still has every track once
    for t in t1 t2 t3 t4 t5 t6; do [ "$(echo "$shuffled" | tr ' ' '\n' | grep -c "^$t\$")" -eq 2 ]; done
    [ "$(order --seed 1 -e 2)" = "$shuffled" ]
}

@test "cmr-pair: same seed, same bytes; another seed, other positions" {
    for i in 1 2; do mk_music "$TMP/t$i.wav" 9; done
    mk_audio "$TMP/audio.cmr" "$TMP"/t?.wav
    a=$(cmr pair -s adjacent --seed 7 -e 2 "$TMP/audio.cmr" | md5sum)
    b=$(cmr pair -s adjacent --seed 7 -e 2 "$TMP/audio.cmr" | md5sum)
    c=$(cmr pair -s adjacent --seed 8 -e 2 "$TMP/audio.cmr" | md5sum)
    [ "$a" = "$b" ]
    [ "$a" != "$c" ]
}

@test "cmr-pair: a track's draws do not depend on the other tracks (sharding)" {
    for i in 1 2 3; do mk_music "$TMP/t$i.wav" 10; done
    cmr decode "$TMP"/t?.wav | cmr resample >"$TMP/all.cmr"
    cmr decode "$TMP/t2.wav" | cmr resample >"$TMP/one.cmr"
    pos() { cmr pair -s random --seed 4 -e 3 "$1" | cmr dump | grep "t2.wav" | grep '^tensor' | grep -o '"epoch.*swapped":[01]'; }
    [ "$(pos "$TMP/all.cmr")" = "$(pos "$TMP/one.cmr")" ]
    [ -n "$(pos "$TMP/one.cmr")" ]
}

@test "cmr-pair: a pipe gives the same output as a file (spooled to TMPDIR)" {
    for i in 1 2; do mk_music "$TMP/t$i.wav" 5; done
    mk_audio "$TMP/audio.cmr" "$TMP"/t?.wav
    a=$(cmr pair --seed 3 -e 2 "$TMP/audio.cmr" | md5sum)
    b=$(cat "$TMP/audio.cmr" | TMPDIR="$TMP" cmr pair --seed 3 -e 2 | md5sum)
    c=$(cmr pair --seed 3 -e 2 <"$TMP/audio.cmr" | md5sum)
    [ "$a" = "$b" ] && [ "$a" = "$c" ]
    # the temporary file is unlinked
    [ -z "$(ls "$TMP" | grep cmr-pair)" ]
    # streaming mode reads a pipe as it comes
    d=$(cat "$TMP/audio.cmr" | cmr pair --seed 3 --no-shuffle | md5sum)
    e=$(cmr pair --seed 3 --no-shuffle "$TMP/audio.cmr" | md5sum)
    [ "$d" = "$e" ]
}

@test "cmr-pair: short tracks are skipped with a counted warning, never silently" {
    mk_music "$TMP/short.wav" 3
    mk_music "$TMP/mid.wav" 5
    mk_music "$TMP/long.wav" 8
    mk_audio "$TMP/audio.cmr" "$TMP/short.wav" "$TMP/mid.wav" "$TMP/long.wav"
    run -0 --separate-stderr cmr pair -s adjacent "$TMP/audio.cmr"
    [ "$stderr" = "cmr-pair: skipped 2 of 3 tracks shorter than 7.1 s (the minimum for --strategy adjacent)" ]
    run -0 --separate-stderr cmr pair -s self --no-shuffle "$TMP/audio.cmr"
    [ "$stderr" = "cmr-pair: skipped 1 of 3 tracks shorter than 3.6 s (the minimum for --strategy self)" ]
    run -0 --separate-stderr cmr pair -q -s self "$TMP/audio.cmr"
    [ -z "$stderr" ]
    run -0 --separate-stderr cmr pair -v -s self --no-shuffle "$TMP/audio.cmr"
    [[ "$stderr" == *"track \"$TMP/short.wav\": skipped: 3.000 s, the self strategy needs 3.600 s"* ]]
    [[ "$stderr" == *"epoch 0, track \"$TMP/long.wav\": anchor at "* ]]
}

@test "cmr-pair: no usable track at all exits 1" {
    mk_music "$TMP/short.wav" 3
    mk_audio "$TMP/audio.cmr" "$TMP/short.wav"
    run -1 --separate-stderr cmr pair -s random "$TMP/audio.cmr"
    [[ "$stderr" == *"cmr-pair: no track is usable for --strategy random (each needs >= 7.2 s)" ]]
}

@test "cmr-pair --max-seconds: only the first seconds of a long track are used, with a warning" {
    mk_music "$TMP/long.wav" 12
    mk_audio "$TMP/audio.cmr" "$TMP/long.wav"
    run -0 --separate-stderr cmr pair --max-seconds 4 "$TMP/audio.cmr"
    [ "$stderr" = "cmr-pair: 1 of 1 tracks are longer than --max-seconds 4: only their first 4 s were used" ]
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' -q --max-seconds 4 '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == *'"track_samples":64000}'* ]]
}

@test "cmr-pair: metadata passes through untouched" {
    mk_music "$TMP/a.wav" 5
    printf 'path\ttrack\tsplit\tlabel\n%s\tsong\ttraining\tjazz\n' "$TMP/a.wav" >"$TMP/list.tsv"
    cmr decode --list "$TMP/list.tsv" | cmr resample >"$TMP/audio.cmr"
    run -0 bash -c "'$CMR_BINDIR/cmr-pair' '$TMP/audio.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == *'track="song"'* ]]
    [[ "${lines[1]}" == *'meta={"split":"training","label":"jazz"}'* ]]
}

@test "cmr-pair: wrong input exits 1 with a message" {
    mk_music "$TMP/a.wav" 5
    mk_audio "$TMP/audio.cmr" "$TMP/a.wav"
    # pairs are not audio
    cmr pair "$TMP/audio.cmr" >"$TMP/p.cmr"
    run -1 --separate-stderr cmr pair "$TMP/p.cmr"
    [[ "$stderr" == "cmr-pair: track \"$TMP/a.wav\": expected \"audio\" frames, got \"pair\""* ]]
    # stereo audio
    mk_sine "$TMP/st.wav" 440 5 16000 2
    cmr decode "$TMP/st.wav" >"$TMP/stereo.cmr"
    run -1 --separate-stderr cmr pair "$TMP/stereo.cmr"
    [[ "$stderr" == *"expected mono audio [n, 1] (downmix with cmr-resample)" ]]
    # two rates
    mk_sine "$TMP/b.wav" 440 5 8000
    cmr decode "$TMP/a.wav" "$TMP/b.wav" >"$TMP/rates.cmr"
    run -1 --separate-stderr cmr pair --no-shuffle "$TMP/rates.cmr"
    [[ "$stderr" == *"8000 Hz, but earlier audio is 16000 Hz; resample everything to one rate with cmr-resample" ]]
    # truncated and empty streams
    head -c 5000 "$TMP/audio.cmr" >"$TMP/cut.cmr"
    run -1 --separate-stderr cmr pair "$TMP/cut.cmr"
    assert_error_line pair
    run -1 --separate-stderr cmr pair --no-shuffle <"$TMP/cut.cmr"
    assert_error_line pair
    run -1 --separate-stderr cmr pair </dev/null
    [[ "$stderr" == *"empty input: no header frame"* ]]
    # gaps between audio frames, a rate changing within a track
    local mk="${CMR_BUILDDIR:-$CMR_BINDIR/..}/tests/tools/cmr-mkframes"
    [ -x "$mk" ] || skip "cmr-mkframes not built"
    "$mk" --kind audio --features 1 --rows 100000 --chunk 1000 --gap >"$TMP/gap.cmr"
    run -1 --separate-stderr cmr pair "$TMP/gap.cmr"
    [[ "$stderr" == *"audio frame 1 starts at offset 1001, expected 1000" ]]
    "$mk" --kind audio --features 1 --rows 100000 --chunk 1000 --rate-change >"$TMP/rc.cmr"
    run -1 --separate-stderr cmr pair --no-shuffle "$TMP/rc.cmr"
    [[ "$stderr" == *"32000 Hz, but earlier audio is 16000 Hz; resample everything to one rate with cmr-resample" ]]
}

@test "cmr-pair: a track its producer could not finish is skipped and counted" {
    mk_music "$TMP/a.wav" 5
    # cmr-decode exits 1 but still ends the track with an error end frame
    { cmr decode -q --keep-going "$TMP/a.wav" "$TMP/missing.wav" || true; } | cmr resample >"$TMP/audio.cmr"
    cmr dump "$TMP/audio.cmr" | grep -q 'error='
    run -0 --separate-stderr cmr pair "$TMP/audio.cmr"
    [ "$stderr" = "cmr-pair: skipped 1 of 2 tracks whose producer reported an error" ]
}

@test "cmr-pair | head: ends quietly" {
    mk_music "$TMP/a.wav" 5
    mk_audio "$TMP/audio.cmr" "$TMP/a.wav"
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-pair' -e 50 '$TMP/audio.cmr' | head -c 100 >/dev/null"
    [ -z "$stderr" ]
}
