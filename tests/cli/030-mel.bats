#!/usr/bin/env bats
# cmr-mel: mono 16 kHz "audio" frames -> "mel" frames (docs/frontend.md)
load helpers

B() { "$CMR_BINDIR/cmr-$1" "${@:2}"; }
mkframes() { "$CMR_BUILDDIR/tests/tools/cmr-mkframes" "$@"; }

# pipe: decode FILE(S) [decode options] into cmr-mel [options], text out
# usage: mel_dump "DECODE ARGS" "MEL ARGS" [DUMP ARGS]
mel_dump() {
    set -o pipefail
    B decode $1 | B mel $2 | B dump ${3:--n 2}
}

# total mel frames and the sum of all tensor rows of a cmr-dump text
rows_of() { sed -n 's/.* shape=\[\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}'; }

@test "cmr-mel --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr mel --help
    [ "${lines[0]}" = "Usage: cmr-mel [OPTION]... [FILE|-]" ]
    [[ "$output" == *"--stats FILE"* && "$output" == *"--norm FILE"* && "$output" == *"--htk"* ]]
    [ -z "$stderr" ]
}

@test "cmr-mel: unknown options, missing values, extra arguments are usage errors (2)" {
    run -2 --separate-stderr cmr mel --bogus
    [ "${stderr_lines[0]}" = "cmr-mel: unknown option '--bogus'" ]
    [ "${stderr_lines[1]}" = "Try 'cmr-mel --help' for more information." ]
    [ -z "$output" ]
    run -2 --separate-stderr cmr mel -x
    [ "${stderr_lines[0]}" = "cmr-mel: unknown option '-x'" ]
    run -2 --separate-stderr cmr mel --n-mels
    [ "${stderr_lines[0]}" = "cmr-mel: option '--n-mels' needs a value" ]
    run -2 --separate-stderr cmr mel a b
    [ "${stderr_lines[0]}" = "cmr-mel: at most one input file" ]
}

@test "cmr-mel: every numeric option is strict and ranged" {
    for bad in 0 7 513 abc 1.5 "" 96x -96; do
        run -2 --separate-stderr cmr mel --n-mels "$bad"
        [ "${stderr_lines[0]}" = "cmr-mel: --n-mels takes an integer in [8, 512], got '$bad'" ]
    done
    for bad in 63 8193 x ""; do
        run -2 --separate-stderr cmr mel --n-fft "$bad"
        [ "${stderr_lines[0]}" = "cmr-mel: --n-fft takes an integer in [64, 8192], got '$bad'" ]
    done
    run -2 --separate-stderr cmr mel --n-fft 511
    [ "${stderr_lines[0]}" = "cmr-mel: --n-fft takes an even integer in [64, 8192], got '511'" ]
    for bad in 0 8193 x; do
        run -2 --separate-stderr cmr mel --hop "$bad"
        [ "${stderr_lines[0]}" = "cmr-mel: --hop takes an integer in [1, 8192], got '$bad'" ]
    done
    run -2 --separate-stderr cmr mel --hop 513
    [ "${stderr_lines[0]}" = "cmr-mel: --hop takes an integer in [1, 512] (the FFT size), got '513'" ]
    for bad in -1 8000.5 nan inf abc ""; do
        run -2 --separate-stderr cmr mel --f-min "$bad"
        [ "${stderr_lines[0]}" = "cmr-mel: --f-min takes a number in [0, 8000], got '$bad'" ]
        run -2 --separate-stderr cmr mel --f-max "$bad"
        [ "${stderr_lines[0]}" = "cmr-mel: --f-max takes a number in [0, 8000], got '$bad'" ]
    done
    run -2 --separate-stderr cmr mel --f-min 4000 --f-max 4000
    [ "${stderr_lines[0]}" = "cmr-mel: --f-min (4000 Hz) should be below --f-max (4000 Hz)" ]
    run -2 --separate-stderr cmr mel --stats "$TMP/s" --norm "$TMP/s"
    [ "${stderr_lines[0]}" = "cmr-mel: --stats and --norm name the same file '$TMP/s'" ]
}

@test "cmr-mel: refuses to write binary frames to a terminal unless --force" {
    mk_sine "$TMP/a.wav" 440 0.1
    B decode "$TMP/a.wav" > "$TMP/a.frames"
    run -2 script -qec "'$CMR_BINDIR/cmr-mel' '$TMP/a.frames'" /dev/null
    [[ "$output" == *"cmr-mel: refusing to write binary frames to a terminal"* ]]
    run -0 script -qec "'$CMR_BINDIR/cmr-mel' --force '$TMP/a.frames' > /dev/null" /dev/null
}

@test "cmr-mel: 3 s of 16 kHz audio give 188 frames of 96 bands, offsets in frames" {
    mk_sine "$TMP/a.wav" 440 3
    run -0 --separate-stderr mel_dump "--chunk 20000 $TMP/a.wav" ""
    [[ "${lines[0]}" == *'cmr-mel{"sample_rate":"16000","n_fft":"512","hop":"256","window":"hann-periodic","pad":"reflect","n_mels":"96","f_min":"0","f_max":"8000","power":"1","scale":"slaney","norm":"slaney","log":"log10(1+10x)"}]' ]]
    # frame t is out once samples up to t*256 + 256 are in: 20000 samples -> 78 frames, ...
    [[ "${lines[1]}" == "tensor kind=mel track=\"$TMP/a.wav\" index=0 offset=0 rate=16000 shape=[78,96] "* ]]
    [[ "${lines[2]}" == *" index=1 offset=78 rate=16000 shape=[78,96] "* ]]
    [[ "${lines[3]}" == *" index=2 offset=156 rate=16000 shape=[31,96] "* ]]
    [[ "${lines[4]}" == *" index=3 offset=187 rate=16000 shape=[1,96] "* ]]
    [ "${lines[5]}" = "end track=\"$TMP/a.wav\" frames=4" ]
    [ "$(printf '%s\n' "${lines[@]}" | rows_of)" -eq 188 ]
}

@test "cmr-mel: the output does not depend on how the audio was chunked" {
    mk_music "$TMP/a.wav" 2
    for chunk in 1 255 256 257 4096 65536; do
        B decode --chunk $chunk "$TMP/a.wav" | B mel > "$TMP/$chunk.frames"
        mkdir "$TMP/npy$chunk"
        B dump -q --npy "$TMP/npy$chunk" "$TMP/$chunk.frames"
    done
    f=$(ls "$TMP/npy65536" | grep '\.npy$')
    for chunk in 1 255 256 257 4096; do
        cmp "$TMP/npy$chunk/$f" "$TMP/npy65536/$f"
    done
    [ "$(B dump "$TMP/1.frames" | rows_of)" -eq 126 ]
}

@test "cmr-mel: tracks of 0, 1, 256 and 257 samples (reflect padding shorter than the pad)" {
    for rows in 0 1 256 257; do
        run -0 --separate-stderr bash -c "'$CMR_BUILDDIR/tests/tools/cmr-mkframes' --kind audio --features 1 --rows $rows --chunk 7 | '$CMR_BINDIR/cmr-mel' | '$CMR_BINDIR/cmr-dump'"
        want=$(( rows == 0 ? 0 : 1 + rows / 256 ))
        [ "$(printf '%s\n' "${lines[@]}" | rows_of)" -eq "$want" ]
        [[ "${lines[-1]}" == "end track=\"track0\" frames="* ]]
    done
}

@test "cmr-mel: stereo or 44.1 kHz audio is refused with a pointer to cmr-resample" {
    mk_sine "$TMP/st.wav" 440 0.5 16000 2
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/st.wav' | '$CMR_BINDIR/cmr-mel' > /dev/null"
    [ "$stderr" = "cmr-mel: track \"$TMP/st.wav\": cmr-mel takes mono 16000 Hz audio, got 2 channels at 16000 Hz; convert it with cmr-resample (it downmixes and resamples to 16000 Hz by default)" ]
    mk_sine "$TMP/cd.wav" 440 0.5 44100
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/cd.wav' | '$CMR_BINDIR/cmr-mel' > /dev/null"
    [ "$stderr" = "cmr-mel: track \"$TMP/cd.wav\": cmr-mel takes mono 16000 Hz audio, got 1 channel at 44100 Hz; convert it with cmr-resample (it downmixes and resamples to 16000 Hz by default)" ]
    # through cmr-resample it works: 3 s -> 188 frames
    mk_sine "$TMP/cd3.wav" 440 3 44100 2
    run -0 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' '$TMP/cd3.wav' | '$CMR_BINDIR/cmr-resample' | '$CMR_BINDIR/cmr-mel' | '$CMR_BINDIR/cmr-dump'"
    [ "$(printf '%s\n' "${lines[@]}" | rows_of)" -eq 188 ]
}

@test "cmr-mel: wrong kind, gaps, NaN samples, empty and truncated input are exit 1" {
    run -1 --separate-stderr bash -c "'$CMR_BUILDDIR/tests/tools/cmr-mkframes' --kind mel | '$CMR_BINDIR/cmr-mel' > /dev/null"
    [ "$stderr" = 'cmr-mel: track "track0": expected "audio" frames, got "mel" (frame 0 of the track)' ]
    run -1 --separate-stderr bash -c "'$CMR_BUILDDIR/tests/tools/cmr-mkframes' --kind audio --features 1 --gap | '$CMR_BINDIR/cmr-mel' > /dev/null"
    [ "$stderr" = 'cmr-mel: track "track0": audio frame 1 starts at offset 101, expected 100 (the spectrogram needs contiguous audio)' ]
    # one audio sample 0.0 patched into a NaN (little-endian 0x7fc00000)
    mkframes --kind audio --features 1 --rows 1 | perl -pe 's/\xc4\x04\x00\x00\x00\x00/\xc4\x04\x00\x00\xc0\x7f/' > "$TMP/nan.frames"
    run -1 --separate-stderr cmr mel "$TMP/nan.frames"
    # the frame reader refuses it (frame.h cmr_frame_check), naming the sample and its time
    [[ "$stderr" == "cmr-mel: $TMP/nan.frames: frame 2 (byte "*'): track "track0": audio frame 0: sample 0 (channel 0, 0.000000 s into the track) is nan' ]]
    run -1 --separate-stderr cmr mel /dev/null
    [ "$stderr" = "cmr-mel: /dev/null: frame 1 (byte 0): empty input: no header frame" ]
    run -1 --separate-stderr cmr mel "$TMP/missing.frames"
    [ "$stderr" = "cmr-mel: $TMP/missing.frames: No such file or directory" ]
    mk_sine "$TMP/a.wav" 440 1
    B decode "$TMP/a.wav" | head -c 20000 > "$TMP/cut.frames"
    run -1 --separate-stderr cmr mel "$TMP/cut.frames"
    [[ "$stderr" == "cmr-mel: "* ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
}

@test "cmr-mel: metadata and info pass through; tracks and upstream errors keep their end frames" {
    mkframes --kind audio --features 1 --rows 1000 --chunk 300 --tracks 2 --meta split=training --info pitch=2 > "$TMP/in.frames"
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-mel' '$TMP/in.frames' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == 'tensor kind=mel track="track0" index=0 offset=0 rate=16000 shape=[1,96] '*' meta={"split":"training"} info={"pitch":2}' ]]
    [ "$(printf '%s\n' "${lines[@]}" | grep -c '^end ')" -eq 2 ]
    [ "$(printf '%s\n' "${lines[@]}" | grep -c 'track="track1"')" -ge 2 ]
    [ "$(printf '%s\n' "${lines[@]}" | grep 'track="track1"' | rows_of)" -eq 4 ]
    run -0 --separate-stderr bash -c "'$CMR_BUILDDIR/tests/tools/cmr-mkframes' --kind audio --features 1 --rows 1000 --end-error 'decoder failed' | '$CMR_BINDIR/cmr-mel' | '$CMR_BINDIR/cmr-dump'"
    [ "${lines[-1]}" = 'end track="track0" frames=3 error="decoder failed"' ]
}

@test "cmr-mel: | head ends quietly (SIGPIPE)" {
    mk_sine "$TMP/a.wav" 440 20
    run --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' --chunk 1000 '$TMP/a.wav' | '$CMR_BINDIR/cmr-mel' | head -c 100 > /dev/null"
    [ -z "$stderr" ]
}

@test "cmr-mel --htk: HTK scale, no norm, power spectrum, no log" {
    mk_sine "$TMP/a.wav" 440 1
    run -0 --separate-stderr mel_dump "$TMP/a.wav" "--htk"
    [[ "${lines[0]}" == *'"power":"2","scale":"htk","norm":"none","log":"none"}]' ]]
    max=$(printf '%s\n' "${lines[1]}" | sed 's/.* max=\([^ ]*\) .*/\1/')
    # a -6 dBFS sine: the power mel peaks in the thousands; the log-mel stays below 3
    awk -v m="$max" 'BEGIN { exit !(m > 1000) }'
    run -0 --separate-stderr mel_dump "$TMP/a.wav" ""
    max=$(printf '%s\n' "${lines[1]}" | sed 's/.* max=\([^ ]*\) .*/\1/')
    awk -v m="$max" 'BEGIN { exit !(m > 1 && m < 3) }'
}

@test "cmr-mel -v reports tracks; -q silences the empty-band warning" {
    mk_sine "$TMP/a.wav" 440 0.5
    B decode "$TMP/a.wav" > "$TMP/a.frames"
    run -0 --separate-stderr cmr mel -v "$TMP/a.frames"
    [ "$stderr" = "cmr-mel: track \"$TMP/a.wav\": 8000 samples, 32 mel frames" ]
    run -0 --separate-stderr cmr mel --n-fft 64 --n-mels 128 "$TMP/a.frames"
    [[ "$stderr" == "cmr-mel: "*" of 128 mel bands have no FFT bin (too many bands for --n-fft 64); they are 0" ]]
    run -0 --separate-stderr cmr mel -q --n-fft 64 --n-mels 128 "$TMP/a.frames"
    [ -z "$stderr" ]
}

# mean and std of all values in a cmr-dump stream, from the per-frame mean= fields and -n all values
dump_stats() {
    B dump -n 1000000 "$1" | awk '/^tensor/ {
        s = $0; sub(/.* data=\[/, "", s); sub(/\].*/, "", s); n = split(s, v, ",");
        for (i = 1; i <= n; i++) { c++; d = v[i] - m; m += d / c; q += d * (v[i] - m) } }
        END { printf "%d %.6f %.6f\n", c, m, sqrt(q / c) }'
}

@test "cmr-mel --stats writes a stats file; --norm standardises with it" {
    mk_music "$TMP/a.wav" 2
    mk_sine "$TMP/b.wav" 330 1
    B decode "$TMP/a.wav" "$TMP/b.wav" > "$TMP/ab.frames"
    cmr mel --stats "$TMP/train.stats" "$TMP/ab.frames" > "$TMP/out.frames"
    [ "$(B dump "$TMP/out.frames" | rows_of)" -eq 189 ]   # frames still pass through
    [ "$(sed -n 1p "$TMP/train.stats")" = "CMRSTATS 1" ]
    [ "$(sed -n 2p "$TMP/train.stats")" = "kind mel" ]
    [ "$(sed -n 3p "$TMP/train.stats")" = "config sr=16000 n_fft=512 hop=256 n_mels=96 f_min=0 f_max=8000 power=1 scale=slaney norm=slaney log=log10(1+10x)" ]
    [ "$(sed -n 4p "$TMP/train.stats")" = "count $(( (126 + 63) * 96 ))" ]
    # the file's numbers equal the statistics of the values written
    cmr mel "$TMP/ab.frames" > "$TMP/mel.frames"
    read -r n mean std < <(dump_stats "$TMP/mel.frames")
    [ "$n" -eq $(( 189 * 96 )) ]
    awk -v a="$mean" -v b="$(sed -n 's/^mean //p' "$TMP/train.stats")" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }'
    awk -v a="$std" -v b="$(sed -n 's/^std //p' "$TMP/train.stats")" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }'
    # standardised output has mean 0 and std 1, and its own stats say so
    cmr mel --norm "$TMP/train.stats" --stats "$TMP/check.stats" "$TMP/ab.frames" > /dev/null
    [[ "$(sed -n 3p "$TMP/check.stats")" == "config "*" standardized" ]]
    awk '/^mean/ { if ($2 > 1e-6 || $2 < -1e-6) exit 1 } /^std/ { if ($2 > 1 + 1e-6 || $2 < 1 - 1e-6) exit 1 }' "$TMP/check.stats"
    cmr mel --norm "$TMP/train.stats" "$TMP/ab.frames" | B dump | grep -q '^header.*"standardize":"mean='
    # statistics of standardised values are not raw statistics
    run -1 --separate-stderr cmr mel --norm "$TMP/check.stats" "$TMP/ab.frames"
    [[ "$stderr" == "cmr-mel: --norm: $TMP/check.stats was computed for a different front end ("*" standardized); this one is ("* ]]
}

@test "cmr-mel --norm: hand-written files are accepted; bad or mismatched ones are exit 1" {
    mk_sine "$TMP/a.wav" 440 0.5
    B decode "$TMP/a.wav" > "$TMP/a.frames"
    printf 'CMRSTATS 1\n# the reference code, FMA-small\nmean 0.1326\nstd 0.1844\n' > "$TMP/fma.stats"
    cmr mel --norm "$TMP/fma.stats" "$TMP/a.frames" > /dev/null
    run -1 --separate-stderr cmr mel --norm "$TMP/none.stats" "$TMP/a.frames"
    [ "$stderr" = "cmr-mel: --norm: stats: cannot open $TMP/none.stats: No such file or directory" ]
    printf 'mean 0\nstd 1\n' > "$TMP/bad.stats"
    run -1 --separate-stderr cmr mel --norm "$TMP/bad.stats" "$TMP/a.frames"
    [ "$stderr" = "cmr-mel: --norm: stats: $TMP/bad.stats is not a cmr stats file (it should start with 'CMRSTATS 1')" ]
    printf 'CMRSTATS 2\nmean 0\nstd 1\n' > "$TMP/v2.stats"
    run -1 --separate-stderr cmr mel --norm "$TMP/v2.stats" "$TMP/a.frames"
    [[ "$stderr" == "cmr-mel: --norm: stats: $TMP/v2.stats has version 2, this build reads up to 1; "* ]]
    printf 'CMRSTATS 1\nmean 0\nstd 0\n' > "$TMP/z.stats"
    run -1 --separate-stderr cmr mel --norm "$TMP/z.stats" "$TMP/a.frames"
    [ "$stderr" = "cmr-mel: --norm: stats: $TMP/z.stats: std should be > 0, got 0" ]
    printf 'CMRSTATS 1\nkind mfcc\nmean 0\nstd 1\n' > "$TMP/k.stats"
    run -1 --separate-stderr cmr mel --norm "$TMP/k.stats" "$TMP/a.frames"
    [ "$stderr" = "cmr-mel: --norm: $TMP/k.stats holds statistics of \"mfcc\" frames, not \"mel\"" ]
    # statistics of the --htk variant do not apply to the default front end
    cmr mel --htk --stats "$TMP/htk.stats" "$TMP/a.frames" > /dev/null
    run -1 --separate-stderr cmr mel --norm "$TMP/htk.stats" "$TMP/a.frames"
    [[ "$stderr" == "cmr-mel: --norm: $TMP/htk.stats was computed for a different front end (sr=16000 n_fft=512 hop=256 n_mels=96 f_min=0 f_max=8000 power=2 scale=htk norm=none log=none); this one is ("* ]]
    cmr mel --htk --norm "$TMP/htk.stats" "$TMP/a.frames" > /dev/null
}

@test "cmr-mel --stats: nothing to compute from is exit 1 and writes no file" {
    mkframes --kind audio --features 1 --rows 0 > "$TMP/empty.frames"
    run -1 --separate-stderr cmr mel --stats "$TMP/e.stats" "$TMP/empty.frames"
    [ "$stderr" = "cmr-mel: --stats: no mel values in the input, $TMP/e.stats not written" ]
    [ ! -e "$TMP/e.stats" ]
    mk_sine "$TMP/a.wav" 440 0.5
    B decode "$TMP/a.wav" > "$TMP/a.frames"
    run -1 --separate-stderr cmr mel --stats "$TMP/no/dir/x.stats" "$TMP/a.frames"
    [[ "$stderr" == "cmr-mel: --stats $TMP/no/dir/x.stats: cannot create a temporary file beside it: No such file or directory" ]]
}

@test "cmr-mel: pair frames [2, n] give [2, T, 96], each row equal to the mel of its crop alone" {
    sox -q -n -r 16000 -c 1 -b 16 "$TMP/a.wav" synth 10 pluck C3 pluck E3 remix -
    B decode "$TMP/a.wav" | B pair --strategy adjacent --seed 3 --crop 3 > "$TMP/pair.frames"
    cmr mel "$TMP/pair.frames" > "$TMP/pair.mel"
    run --separate-stderr B dump "$TMP/pair.mel"
    [ "$status" -eq 0 ]
    [[ "${lines[1]}" == "tensor kind=pair "*"shape=[2,188,96]"* ]]
    # the positive row against the same 3 s decoded as a file of its own
    pos=$(sed -n 's/.*"positive_offset":\([0-9]*\).*/\1/p' <<< "${lines[1]}")
    [ -n "$pos" ]
    sox "$TMP/a.wav" "$TMP/pos.wav" trim "${pos}s" 48000s
    B decode "$TMP/pos.wav" | cmr mel | B dump --npy "$TMP/one" > /dev/null
    B dump --npy "$TMP/two" "$TMP/pair.mel" > /dev/null
    cmp <(tail -c 72192 "$TMP/one/"*.npy) <(tail -c 72192 "$TMP/two/"*.npy)
    # a spectrogram is not audio
    run -1 --separate-stderr cmr mel "$TMP/pair.mel"
    [[ "$stderr" == *"should have shape [rows, samples] of audio, got 3 dims (is it a spectrogram already?)" ]]
}

# mk_loud FILE: a 1 s 16 kHz mono float WAV, 0.5 s of silence then a sine x 1e30
mk_loud() {
    perl -e 'binmode STDOUT; $d = pack("f<*", map { $_ < 8000 ? 0 : 1e30 * sin(0.17 * $_) } 0 .. 15999);
             print "RIFF", pack("V", 36 + length $d), "WAVEfmt ", pack("VvvVVvv", 16, 3, 1, 16000, 64000, 4, 32),
                   "data", pack("V", length $d), $d' > "$1"
}

@test "cmr-mel: finite audio with infinite results (a sine x 1e30) is exit 1 naming the track and the time (issue 11 G)" {
    mk_loud "$TMP/loud.wav"
    run -1 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' '$TMP/loud.wav' | '$CMR_BINDIR/cmr-mel' > /dev/null"
    [[ "$stderr" =~ ^cmr-mel:\ track\ \"$TMP/loud.wav\":\ mel:\ frame\ [0-9]+\ \(0\.4[0-9]+\ s\ into\ the\ track\),\ band\ [0-9]+\ is\ infinite ]]
    [ "${#stderr_lines[@]}" -eq 1 ]
}

@test "every program: --help into a full device is exit 1 with a message, not 0 (issue 11)" {
    [ -w /dev/full ] || skip "no /dev/full"
    for p in "$CMR_BINDIR"/cmr-*; do
        [ -x "$p" ] || continue
        run -1 --separate-stderr bash -c "'$p' --help > /dev/full"
        # (the errno may be gone when a long text failed inside fprintf already)
        [[ "$stderr" == "$(basename "$p"): error: writing output failed: "* ]] ||
            { echo "$p: $stderr"; false; }
    done
    run -0 bash -c "'$CMR_BINDIR/cmr-mel' --help > /dev/null"
}
