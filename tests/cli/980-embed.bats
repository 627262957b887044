#!/usr/bin/env bats
# The embedding API (lib/cmr-embed.h) through its example, examples/embed-wav:
# its embeddings equal, bit for bit, those of
#   cmr-decode | cmr-resample | cmr-mel | cmr-segment | cmr-encode
# on the same file (issue 12).
load helpers

embed_wav() {
    "${CMR_BUILDDIR:?}/examples/embed-wav" "$@"
}

@test "embed-wav -h: usage on stdout, exit 0; bad usage exit 2" {
    run embed_wav -h
    [ "$status" -eq 0 ]
    [[ "$output" == "Usage: embed-wav "* ]]
    run -2 embed_wav
    run -2 embed_wav -H 0 m f
    [[ "$output" == *"-H takes an integer in [1, 1000000], got '0'"* ]]
}

@test "embed-wav: a 44.1 kHz stereo file equals the filter chain bit for bit (encoder; hop 94, pad)" {
    cmr model init --kind encoder --width 0.0625 --seed 3 "$TMP/enc.cmr"
    mk_music "$TMP/m.wav" 8 44100
    sox -q "$TMP/m.wav" -c 2 "$TMP/st.wav" remix 1 1v0.5
    embed_wav -H 94 -p -o "$TMP/api.f32" "$TMP/enc.cmr" "$TMP/st.wav"
    # 8 s = 501 frames: starts 0, 94, ... 282 whole, 376 padded: 5 embeddings of 128
    [ "$(stat -c %s "$TMP/api.f32")" -eq $((5 * 128 * 4)) ]
    cmr decode "$TMP/st.wav" | cmr resample | cmr mel | cmr segment --hop 94 --pad \
        | cmr encode --model "$TMP/enc.cmr" | cmr dump --npy "$TMP/npy"
    tail -c $((5 * 128 * 4)) "$TMP"/npy/*.npy | cmp - "$TMP/api.f32"
    # the text output carries the same values and the start times
    run --separate-stderr embed_wav -H 94 -p "$TMP/enc.cmr" "$TMP/st.wav"
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 5 ]
    [[ "${lines[1]}" == "1.504 "* ]]
    [ "$(echo "${lines[0]}" | wc -w)" -eq 129 ]
}

@test "embed-wav: MelCPC's GRU state carries across batches as in cmr-encode (16 kHz mono, no resampling)" {
    cmr model init --kind cpc --width 0.0625 --seed 4 "$TMP/cpc.cmr"
    mk_music "$TMP/m.wav" 14 16000
    embed_wav -H 47 -o "$TMP/api.f32" "$TMP/cpc.cmr" "$TMP/m.wav"
    cmr decode --chunk 1000 "$TMP/m.wav" | cmr resample | cmr mel | cmr segment --hop 47 \
        | cmr encode --batch 3 --model "$TMP/cpc.cmr" | cmr dump --npy "$TMP/npy"
    # 14 s = 876 frames: (876 - 188) / 47 + 1 = 15 segments of 256 values, over one batch of 16
    [ "$(stat -c %s "$TMP/api.f32")" -eq $((15 * 256 * 4)) ]
    tail -c $((15 * 256 * 4)) "$TMP"/npy/*.npy | cmp - "$TMP/api.f32"
}

@test "embed-wav: a file shorter than a segment gives nothing, or one padded embedding" {
    cmr model init --kind encoder --width 0.0625 --seed 3 "$TMP/enc.cmr"
    mk_sine "$TMP/s.wav" 440 1 22050
    run --separate-stderr embed_wav "$TMP/enc.cmr" "$TMP/s.wav"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    embed_wav -p -o "$TMP/api.f32" "$TMP/enc.cmr" "$TMP/s.wav"
    cmr decode "$TMP/s.wav" | cmr resample | cmr mel | cmr segment --pad \
        | cmr encode --model "$TMP/enc.cmr" | cmr dump --npy "$TMP/npy"
    [ "$(stat -c %s "$TMP/api.f32")" -eq 512 ]
    tail -c 512 "$TMP"/npy/*.npy | cmp - "$TMP/api.f32"
}

@test "embed-wav: a bad model or audio file is exit 1 with a message, and no output file" {
    mk_sine "$TMP/s.wav" 440 1
    echo nonsense > "$TMP/bad.cmr"
    run --separate-stderr embed_wav -o "$TMP/o.f32" "$TMP/bad.cmr" "$TMP/s.wav"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "embed-wav: "*"bad.cmr"* ]]
    [ ! -e "$TMP/o.f32" ]
    run --separate-stderr embed_wav "$TMP/bad.cmr" "$TMP/missing.wav"
    [ "$status" -eq 1 ]
    [[ "$stderr" == "embed-wav: $TMP/missing.wav: "* ]]
}
