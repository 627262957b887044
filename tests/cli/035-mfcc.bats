#!/usr/bin/env bats
# cmr-mfcc: mono 16 kHz "audio" frames -> "mfcc" frames (docs/frontend.md)
load helpers

B() { "$CMR_BINDIR/cmr-$1" "${@:2}"; }
mkframes() { "$CMR_BUILDDIR/tests/tools/cmr-mkframes" "$@"; }
rows_of() { sed -n 's/.* shape=\[\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}'; }

@test "cmr-mfcc --help: usage on stdout, exit 0, names the convention" {
    run -0 --separate-stderr cmr mfcc --help
    [ "${lines[0]}" = "Usage: cmr-mfcc [OPTION]... [FILE|-]" ]
    [[ "$output" == *"librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=40)"* ]]
    [ -z "$stderr" ]
}

@test "cmr-mfcc: bad options are usage errors (2)" {
    run -2 --separate-stderr cmr mfcc --bogus
    [ "${stderr_lines[0]}" = "cmr-mfcc: unknown option '--bogus'" ]
    [ "${stderr_lines[1]}" = "Try 'cmr-mfcc --help' for more information." ]
    for bad in 0 513 x 4.5 ""; do
        run -2 --separate-stderr cmr mfcc --n-mfcc "$bad"
        [ "${stderr_lines[0]}" = "cmr-mfcc: --n-mfcc takes an integer in [1, 512], got '$bad'" ]
    done
    run -2 --separate-stderr cmr mfcc --n-mfcc 41 --n-mels 40
    [ "${stderr_lines[0]}" = "cmr-mfcc: --n-mfcc (41) should be at most --n-mels (40)" ]
    for bad in 7 513 y; do
        run -2 --separate-stderr cmr mfcc --n-mels "$bad"
        [ "${stderr_lines[0]}" = "cmr-mfcc: --n-mels takes an integer in [8, 512], got '$bad'" ]
    done
    run -2 --separate-stderr cmr mfcc --n-fft 100 --hop 101
    [ "${stderr_lines[0]}" = "cmr-mfcc: --hop takes an integer in [1, 100] (the FFT size), got '101'" ]
    run -2 --separate-stderr cmr mfcc --n-fft 101
    [ "${stderr_lines[0]}" = "cmr-mfcc: --n-fft takes an even integer in [64, 8192], got '101'" ]
    run -2 --separate-stderr cmr mfcc --f-min 300 --f-max 200
    [ "${stderr_lines[0]}" = "cmr-mfcc: --f-min (300 Hz) should be below --f-max (200 Hz)" ]
    run -2 --separate-stderr cmr mfcc --f-max 8001
    [ "${stderr_lines[0]}" = "cmr-mfcc: --f-max takes a number in [0, 8000], got '8001'" ]
    run -2 --separate-stderr cmr mfcc a b
    [ "${stderr_lines[0]}" = "cmr-mfcc: at most one input file" ]
}

@test "cmr-mfcc: refuses to write binary frames to a terminal unless --force" {
    mk_sine "$TMP/a.wav" 440 0.1
    B decode "$TMP/a.wav" > "$TMP/a.frames"
    run -2 script -qec "'$CMR_BINDIR/cmr-mfcc' '$TMP/a.frames'" /dev/null
    [[ "$output" == *"cmr-mfcc: refusing to write binary frames to a terminal"* ]]
}

@test "cmr-mfcc: 3 s give 188 frames of 40 coefficients, independent of the chunking" {
    mk_music "$TMP/a.wav" 3
    run -0 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | '$CMR_BINDIR/cmr-mfcc' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[0]}" == *'"log":"10log10(max(x,1e-10))","n_mfcc":"40","dct":"II-ortho"}]' ]]
    [[ "${lines[1]}" == "tensor kind=mfcc track=\"$TMP/a.wav\" index=0 offset=0 rate=16000 shape=["*",40] "* ]]
    [ "$(printf '%s\n' "${lines[@]}" | rows_of)" -eq 188 ]
    for chunk in 3 1000 65536; do
        mkdir "$TMP/n$chunk"
        B decode --chunk $chunk "$TMP/a.wav" | B mfcc | B dump -q --npy "$TMP/n$chunk"
    done
    f=$(ls "$TMP/n3" | grep '\.npy$')
    cmp "$TMP/n3/$f" "$TMP/n65536/$f"
    cmp "$TMP/n1000/$f" "$TMP/n65536/$f"
}

@test "cmr-mfcc: --n-mfcc and --n-mels shape the output" {
    mk_sine "$TMP/a.wav" 440 1
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | '$CMR_BINDIR/cmr-mfcc' -n 13 -m 40 | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == *" shape=["*",13] "* ]]
    [[ "${lines[0]}" == *'"n_mels":"40"'*'"n_mfcc":"13"'* ]]
    [ "$(printf '%s\n' "${lines[@]}" | rows_of)" -eq 63 ]
}

@test "cmr-mfcc: digital silence is -100 dB in every band: c0 = -100 sqrt(96), the rest 0" {
    sox -q -D -n -r 16000 -c 1 -b 16 "$TMP/z.wav" trim 0 0.1
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/z.wav' | '$CMR_BINDIR/cmr-mfcc' | '$CMR_BINDIR/cmr-dump' -n 3"
    # -100 * sqrt(96) = -979.796
    [[ "${lines[1]}" == *" shape=[6,40] min=-979.796 max=0 mean=-24.4949 data=[-979.796,0,0,...] "* ]]
}

@test "cmr-mfcc: wrong rate, wrong kind, empty and truncated input are exit 1" {
    mk_sine "$TMP/a.wav" 440 0.5 22050
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | '$CMR_BINDIR/cmr-mfcc' > /dev/null"
    [ "$stderr" = "cmr-mfcc: track \"$TMP/a.wav\": cmr-mfcc takes mono 16000 Hz audio, got 1 channel at 22050 Hz; convert it with cmr-resample (it downmixes and resamples to 16000 Hz by default)" ]
    run -1 --separate-stderr bash -c "'$CMR_BUILDDIR/tests/tools/cmr-mkframes' --kind mel | '$CMR_BINDIR/cmr-mfcc' > /dev/null"
    [ "$stderr" = 'cmr-mfcc: track "track0": expected "audio" frames, got "mel" (frame 0 of the track)' ]
    run -1 --separate-stderr cmr mfcc /dev/null
    [ "$stderr" = "cmr-mfcc: /dev/null: frame 1 (byte 0): empty input: no header frame" ]
    mkframes --kind audio --features 1 --rows 1000 --no-end > "$TMP/open.frames"
    run -1 --separate-stderr cmr mfcc "$TMP/open.frames"
    [[ "$stderr" == "cmr-mfcc: "* ]]
}

@test "cmr-mfcc: a sine x 1e30 gives an error naming the track and the time, not NaN (issue 11 G)" {
    perl -e 'binmode STDOUT; $d = pack("f<*", map { 1e30 * sin(0.17 * $_) } 0 .. 15999);
             print "RIFF", pack("V", 36 + length $d), "WAVEfmt ", pack("VvvVVvv", 16, 3, 1, 16000, 64000, 4, 32),
                   "data", pack("V", length $d), $d' > "$TMP/loud.wav"
    run -1 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' '$TMP/loud.wav' | '$CMR_BINDIR/cmr-mfcc' > /dev/null"
    [ "$stderr" = "cmr-mfcc: track \"$TMP/loud.wav\": mel: frame 0 (0.000 s into the track), band 0 is infinite: the audio is too loud for float32 arithmetic (or not finite)" ]
}
