#!/usr/bin/env bats
# cmr-resample: downmix to mono, resample with libsoxr (docs/filters.md#cmr-resample)
load helpers

MKFRAMES="$CMR_BUILDDIR/tests/tools/cmr-mkframes"
decode() { "$CMR_BINDIR/cmr-decode" "$@"; }
resample() { "$CMR_BINDIR/cmr-resample" "$@"; }
dump() { "$CMR_BINDIR/cmr-dump" "$@"; }

# decode FILE [decode options] | resample [options in RS] | dump
pipeline() {
    set -o pipefail
    local f=$1
    shift
    decode "$@" "$f" | resample ${RS:-} | dump -n 3
}

@test "cmr-resample --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr resample --help
    [[ "${lines[0]}" == "Usage: cmr-resample [OPTION]... [FILE|-]" ]]
    [ -z "$stderr" ]
}

@test "cmr-resample: bad options are usage errors (2)" {
    run -2 --separate-stderr cmr resample --bogus
    [ "${stderr_lines[0]}" = "cmr-resample: unknown option '--bogus'" ]
    for bad in 0 999 384001 abc 16000.5 "" -16000; do
        run -2 --separate-stderr cmr resample --rate "$bad"
        [ "${stderr_lines[0]}" = "cmr-resample: --rate takes an integer in [1000, 384000], got '$bad'" ]
    done
    for bad in HQ xx "" high kaiser_best; do
        run -2 --separate-stderr cmr resample --quality "$bad"
        [ "${stderr_lines[0]}" = "cmr-resample: --quality takes vhq, hq, mq, torchaudio or kaiser-best, got '$bad'" ]
    done
    run -2 --separate-stderr cmr resample a b
    [ "${stderr_lines[0]}" = "cmr-resample: at most one input file" ]
}

@test "cmr-resample: refuses a terminal on stdout" {
    mk_sine "$TMP/a.wav" 440 0.1
    decode "$TMP/a.wav" > "$TMP/a.cmr"
    run -2 script -qec "'$CMR_BINDIR/cmr-resample' '$TMP/a.cmr'" /dev/null
    [[ "$output" == *"cmr-resample: refusing to write binary frames to a terminal"* ]]
}

@test "cmr-resample: 44.1 kHz stereo -> 16 kHz mono, [n, 1] frames, offsets in output samples" {
    mk_sine "$TMP/a.wav" 1000 1 44100 2
    run -0 --separate-stderr pipeline "$TMP/a.wav" --chunk 20000
    [[ "${lines[0]}" == *',cmr-resample{"rate":"16000","quality":"hq","downmix":"mean"}]' ]]
    [[ "${lines[1]}" == 'tensor kind=audio track="'"$TMP"'/a.wav" index=0 offset=0 rate=16000 shape=['*',1] '* ]]
    # offsets are contiguous and sum to exactly 16000 samples
    total=0
    for l in "${lines[@]:1:${#lines[@]}-2}"; do
        [[ "$l" =~ offset=([0-9]+).*shape=\[([0-9]+),1\] ]]
        [ "${BASH_REMATCH[1]}" -eq "$total" ]
        total=$((total + BASH_REMATCH[2]))
    done
    [ "$total" -eq 16000 ]
    [[ "${lines[-1]}" == "end track=\"$TMP/a.wav\" frames=$(( ${#lines[@]} - 2 ))" ]]
}

@test "cmr-resample: a 1 kHz sine keeps its amplitude (-6 dBFS, within 1e-3)" {
    mk_sine "$TMP/a.wav" 1000 1 44100
    run -0 --separate-stderr pipeline "$TMP/a.wav" --chunk 8000
    # a frame from the middle (the abrupt start and end ring a little)
    [[ "${lines[3]}" =~ min=(-?[0-9.e-]+)\ max=([0-9.e-]+) ]]
    awk -v lo="${BASH_REMATCH[1]}" -v hi="${BASH_REMATCH[2]}" \
        'BEGIN { exit !(lo > -0.501 && lo < -0.499 && hi > 0.499 && hi < 0.501) }'
}

@test "cmr-resample: output does not depend on the input chunking (bit-identical)" {
    mk_music "$TMP/m.wav" 3 44100
    for c in 65536 4096 1000 777; do
        decode --chunk "$c" "$TMP/m.wav" | resample | dump --npy "$TMP/out$c"
    done
    for c in 4096 1000 777; do
        cmp "$TMP/out65536/"*.npy "$TMP/out$c/"*.npy
    done
}

@test "cmr-resample: all qualities and rates run; 48 kHz -> 22050 Hz has the right length" {
    mk_sine "$TMP/a.wav" 440 2 48000
    for q in vhq hq mq torchaudio kaiser-best; do
        RS="--quality $q --rate 22050" run -0 --separate-stderr pipeline "$TMP/a.wav"
        [[ "${lines[0]}" == *'cmr-resample{"rate":"22050","quality":"'$q'","downmix":"mean"}]' ]]
        total=0
        for l in "${lines[@]:1:${#lines[@]}-2}"; do
            [[ "$l" =~ shape=\[([0-9]+),1\] ]]
            total=$((total + BASH_REMATCH[1]))
        done
        [ "$total" -eq 44100 ]
    done
}

@test "cmr-resample --quality torchaudio: ceil() length, chunking-invariant" {
    mk_music "$TMP/m.wav" 1 44100
    for c in 65536 1000; do
        decode --chunk "$c" "$TMP/m.wav" | resample --quality torchaudio | dump --npy "$TMP/out$c"
    done
    cmp "$TMP/out65536/"*.npy "$TMP/out1000/"*.npy
    [ "$(head -c 128 "$TMP/out1000/"*.npy | tail -c +11 | tr -d '\n' | sed 's/ *$//')" = "{'descr': '<f4', 'fortran_order': False, 'shape': (16000, 1), }" ]
    # 44101 samples: torchaudio keeps ceil(44101 * 16000 / 44100) = 16001
    sox -q "$TMP/m.wav" "$TMP/m1.wav" pad 0 1s
    decode "$TMP/m1.wav" | resample --quality torchaudio | dump --npy "$TMP/one"
    [[ "$(head -c 128 "$TMP/one/"*.npy)" == *"'shape': (16001, 1)"* ]]
}

@test "cmr-resample: at the target rate a mono track passes unchanged" {
    mk_music "$TMP/m.wav" 1 16000
    decode --chunk 3000 "$TMP/m.wav" | dump -n 100000 | sed 1d > "$TMP/in.txt"
    decode --chunk 3000 "$TMP/m.wav" | resample | dump -n 100000 | sed 1d > "$TMP/out.txt"
    cmp "$TMP/in.txt" "$TMP/out.txt"
}

@test "cmr-resample: downmix is the mean of the channels" {
    # left = sine, right = -sine: the mean is silence
    sox -q -D -n -r 16000 -c 2 -b 16 "$TMP/lr.wav" synth 1 sine 440 vol 0.5 remix 1 1v-1
    run -0 --separate-stderr pipeline "$TMP/lr.wav"
    [[ "${lines[1]}" == *" shape=[16000,1] min=0 max=0 mean=0 "* ]]
}

@test "cmr-resample: metadata and info pass through; end frames keep their error" {
    run -0 --separate-stderr bash -c "'$MKFRAMES' --kind audio --features 2 --rows 44100 --chunk 10000 --rate 44100 \
        --meta split=train --info gain=0.5 --tracks 2 --end-error 'upstream failed' | '$CMR_BINDIR/cmr-resample' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == *' meta={"split":"train"} info={"gain":0.5}' ]]
    [[ "${lines[-1]}" == 'end track="track1" frames='*' error="upstream failed"' ]]
}

@test "cmr-resample: frames of the wrong kind are exit 1" {
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind mel | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [ "${stderr_lines[0]}" = 'cmr-resample: track "track0": expected "audio" frames, got "mel" (frame 0 of the track)' ]
}

@test "cmr-resample: a gap in the offsets or a rate change within a track is exit 1" {
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind audio --features 1 --gap | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [ "${stderr_lines[0]}" = 'cmr-resample: track "track0": audio frame 1 starts at offset 101, expected 100 (gaps and overlaps cannot be resampled)' ]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind audio --features 1 --rate-change | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [ "${stderr_lines[0]}" = 'cmr-resample: track "track0": the rate changes within the track (16000 Hz, then 32000 Hz at frame 1)' ]
}

@test "cmr-resample: empty input, garbage and a truncated stream are exit 1" {
    run -1 --separate-stderr bash -c ": | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-resample: "*"empty input: no header frame" ]]
    run -1 --separate-stderr bash -c "echo hello | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-resample: "* ]]
    mk_sine "$TMP/a.wav" 440 1 44100
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' --chunk 4000 '$TMP/a.wav' | head -c 100 | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-resample: "*"stream ends inside a frame"* ]]
    run -1 --separate-stderr bash -c "'$MKFRAMES' --kind audio --features 1 --no-end | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-resample: "*'stream ends inside track "track0" (no end frame)' ]]
}

@test "cmr-resample: a reader that stops early (head) ends it quietly" {
    mk_sine "$TMP/a.wav" 440 20 44100 2
    run bash -c "'$CMR_BINDIR/cmr-decode' --chunk 4096 '$TMP/a.wav' | '$CMR_BINDIR/cmr-resample' | head -c 1000 | wc -c; echo \"\${PIPESTATUS[1]}\""
    [ "${lines[0]}" -eq 1000 ]
    [[ "${lines[1]}" == 141 || "${lines[1]}" == 0 || "${lines[1]}" == 1 ]]
    run bash -c "'$CMR_BINDIR/cmr-decode' --chunk 4096 '$TMP/a.wav' | '$CMR_BINDIR/cmr-resample' | '$CMR_BINDIR/cmr-dump' | head -n1"
    [[ "$output" == "header version=1 "* ]]
}

# the rate of every audio frame of FILE (a double 16000.0) replaced by the double HEX
patch_rate() {
    perl -pe 'BEGIN { binmode STDIN; binmode STDOUT; $r = pack("H*", "'"$2"'") } s/\xcb\x40\xcf\x40\x00\x00\x00\x00\x00/\xcb$r/g' "$1"
}

@test "cmr-resample: an absurd rate in a frame is exit 1 at once, not a crash, hang or GBs (issue 11 A, B)" {
    mk_sine "$TMP/a.wav" 440 0.0625
    decode "$TMP/a.wav" > "$TMP/a.cmr"
    # 0.01 Hz, 1e-300 Hz, 0.1 Hz, 1e9 Hz
    for hex in 3f847ae147ae147b 01a56e1fc2f8f359 3fb999999999999a 41cdcd6500000000; do
        patch_rate "$TMP/a.cmr" $hex > "$TMP/bad.cmr"
        for q in hq mq torchaudio; do
            run -1 --separate-stderr timeout 20 "$CMR_BINDIR/cmr-resample" -Q $q "$TMP/bad.cmr"
            [[ "$stderr" == "cmr-resample: $TMP/bad.cmr: frame 2 (byte "*"): track \"$TMP/a.wav\": audio frame 0: sample rate "*" Hz is outside the supported range 1000..768000 Hz" ]]
            [ "${#stderr_lines[@]}" -eq 1 ]
        done
    done
    # a WAV that declares 1 Hz is refused by cmr-decode already
    sox -q -n -r 1 -c 1 -b 16 "$TMP/one.wav" synth 2000s sine 0.1
    run -1 --separate-stderr cmr decode "$TMP/one.wav"
    [ "$stderr" = "cmr-decode: $TMP/one.wav: sample rate 1 Hz is outside the supported range 1000..768000 Hz" ]
    [ -z "$output" ] || [[ "$output" != *tensor* ]]
}

@test "cmr-resample: audio of shape [10, 0] is refused by the reader, naming the dimension (issue 11)" {
    mk_sine "$TMP/a.wav" 440 0.0625
    decode "$TMP/a.wav" | perl -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\x92\xcd\x03\xe8\x01/\x92\x0a\x00/' > "$TMP/z.cmr"
    run -1 --separate-stderr cmr resample "$TMP/z.cmr"
    [[ "$stderr" == "cmr-resample: $TMP/z.cmr: frame 2 (byte "*"): shape[1] should be an integer >= 1" ]]
}

@test "cmr-resample: 1000 Hz -> 384000 Hz keeps frames (and memory) bounded (issue 11 B)" {
    sox -q -n -r 1000 -c 1 -b 16 "$TMP/lo.wav" synth 4 sine 100 vol 0.5
    run -0 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' '$TMP/lo.wav' | '$CMR_BINDIR/cmr-resample' -r 384000 | '$CMR_BINDIR/cmr-dump' -n 0"
    total=0 max=0
    for l in "${lines[@]}"; do
        [[ "$l" =~ ^tensor.*shape=\[([0-9]+),1\] ]] || continue
        n=${BASH_REMATCH[1]}
        total=$((total + n))
        [ "$n" -gt "$max" ] && max=$n
    done
    [ "$total" -eq $((4 * 384000)) ]
    # one 4000-sample input frame would have made a 1.5-million-sample frame
    [ "$max" -le 1048576 ]
}
