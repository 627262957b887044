#!/usr/bin/env bats
# cmr-decode: audio files -> "audio" frames (docs/filters.md#cmr-decode)
load helpers

dump() { "$CMR_BINDIR/cmr-dump" "$@"; }
decode() { "$CMR_BINDIR/cmr-decode" "$@"; }

# decode ARGS... | cmr-dump: the text of the stream, failing if either fails
decode_dump() {
    set -o pipefail
    decode "$@" | dump -n 2
}

@test "cmr-decode --help: usage on stdout, exit 0" {
    run -0 --separate-stderr cmr decode --help
    [[ "${lines[0]}" == "Usage: cmr-decode [OPTION]... [FILE|-]..." ]]
    [[ "$output" == *"--keep-going"* ]]
    [ -z "$stderr" ]
}

@test "cmr-decode: unknown options and missing values are usage errors (2)" {
    run -2 --separate-stderr cmr decode --bogus
    [ "${stderr_lines[0]}" = "cmr-decode: unknown option '--bogus'" ]
    [ "${stderr_lines[1]}" = "Try 'cmr-decode --help' for more information." ]
    [ -z "$output" ]
    run -2 --separate-stderr cmr decode -x a.wav
    [ "${stderr_lines[0]}" = "cmr-decode: unknown option '-x'" ]
    run -2 --separate-stderr cmr decode --chunk
    [ "${stderr_lines[0]}" = "cmr-decode: option '--chunk' needs a value" ]
}

@test "cmr-decode --chunk: strict integers in [1, 1048576]" {
    mk_sine "$TMP/a.wav" 440 0.1
    for bad in 0 -1 abc 1.5 "" 12x 1048577 99999999999999999999; do
        run -2 --separate-stderr cmr decode --chunk "$bad" "$TMP/a.wav"
        [ "${stderr_lines[0]}" = "cmr-decode: --chunk takes an integer in [1, 1048576], got '$bad'" ]
    done
}

@test "cmr-decode --shard: I/N with 0 <= I < N" {
    mk_sine "$TMP/a.wav" 440 0.1
    for bad in 1 2/2 -1/2 a/b 0/0 1/2x /2 1/ +0/2 0/-1 0/1000001; do
        run -2 --separate-stderr cmr decode --shard "$bad" "$TMP/a.wav"
        [[ "${stderr_lines[0]}" == "cmr-decode: --shard takes I/N with integers 0 <= I < N <= 1000000, got '$bad'" ]]
    done
}

@test "cmr-decode: --list and files together is a usage error" {
    mk_sine "$TMP/a.wav" 440 0.1
    printf 'path\na.wav\n' > "$TMP/list.tsv"
    run -2 --separate-stderr cmr decode --list "$TMP/list.tsv" "$TMP/a.wav"
    [ "${stderr_lines[0]}" = "cmr-decode: give either --list or files, not both" ]
}

@test "cmr-decode: refuses to write binary frames to a terminal unless --force" {
    mk_sine "$TMP/a.wav" 440 0.1
    run -2 script -qec "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav'" /dev/null
    [[ "$output" == *"cmr-decode: refusing to write binary frames to a terminal"* ]]
    run -0 script -qec "'$CMR_BINDIR/cmr-decode' --force '$TMP/a.wav' > /dev/null" /dev/null
}

@test "cmr-decode: a stereo WAV becomes [n, 2] frames at the file's rate, chunked" {
    mk_sine "$TMP/a.wav" 440 1 44100 2
    run -0 --separate-stderr decode_dump --chunk 10000 "$TMP/a.wav"
    [ "${#lines[@]}" -eq 7 ]   # header, 5 audio frames, end
    [[ "${lines[0]}" == 'header version=1 provenance=[cmr-decode{"chunk":"10000","shard":"0/1","keep_going":"0","files":"'"$TMP/a.wav"'","tracks":"1"}]' ]]
    [[ "${lines[1]}" == "tensor kind=audio track=\"$TMP/a.wav\" index=0 offset=0 rate=44100 shape=[10000,2] "* ]]
    [[ "${lines[2]}" == *" index=1 offset=10000 rate=44100 shape=[10000,2] "* ]]
    [[ "${lines[5]}" == *" index=4 offset=40000 rate=44100 shape=[4100,2] "* ]]
    [ "${lines[6]}" = "end track=\"$TMP/a.wav\" frames=5" ]
    # a -6 dBFS sine
    [[ "${lines[1]}" == *" max=0.5"* ]]
}

@test "cmr-decode: the default chunk is 65536 sample frames" {
    mk_sine "$TMP/a.wav" 440 2 44100
    run -0 --separate-stderr decode_dump "$TMP/a.wav"
    [[ "${lines[1]}" == *" shape=[65536,1] "* ]]
    [[ "${lines[2]}" == *" offset=65536 rate=44100 shape=[22664,1] "* ]]
    [ "${lines[3]}" = "end track=\"$TMP/a.wav\" frames=2" ]
}

@test "cmr-decode: FLAC, Ogg/Vorbis and MP3 decode (sox writes them)" {
    mk_sine "$TMP/a.wav" 440 1 44100 2
    for ext in flac ogg mp3; do
        sox -q "$TMP/a.wav" "$TMP/a.$ext" || skip "sox cannot write .$ext"
        run -0 --separate-stderr decode_dump "$TMP/a.$ext"
        [[ "${lines[1]}" == "tensor kind=audio track=\"$TMP/a.$ext\" index=0 offset=0 rate=44100 shape=["*",2] "* ]]
        [[ "${lines[-1]}" == "end track=\"$TMP/a.$ext\" frames=1" ]]
    done
    # FLAC is lossless: the same samples as the WAV
    decode "$TMP/a.wav" | dump -n 8 | sed 1d | sed 's/track="[^"]*"//' > "$TMP/wav.txt"
    decode "$TMP/a.flac" | dump -n 8 | sed 1d | sed 's/track="[^"]*"//' > "$TMP/flac.txt"
    cmp "$TMP/wav.txt" "$TMP/flac.txt"
}

@test "cmr-decode: Opus decodes (when ffmpeg can write it)" {
    command -v ffmpeg >/dev/null || skip "ffmpeg not installed"
    mk_sine "$TMP/a.wav" 440 1 48000
    ffmpeg -loglevel error -i "$TMP/a.wav" -c:a libopus "$TMP/a.opus" 2>/dev/null || skip "ffmpeg has no libopus"
    run -0 --separate-stderr decode_dump "$TMP/a.opus"
    [[ "${lines[1]}" == *" rate=48000 shape=["*",1] "* ]]
}

@test "cmr-decode: '-' and no arguments read stdin; the track id is '-'" {
    mk_sine "$TMP/a.wav" 440 0.5
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' - < '$TMP/a.wav' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == 'tensor kind=audio track="-" index=0 offset=0 rate=16000 shape=[8000,1] '* ]]
    run -0 --separate-stderr bash -c "cat '$TMP/a.wav' | '$CMR_BINDIR/cmr-decode' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == 'tensor kind=audio track="-" index=0 offset=0 rate=16000 shape=[8000,1] '* ]]
    [ "${lines[2]}" = 'end track="-" frames=1' ]
}

@test "cmr-decode: FLAC and MP3 through a pipe (stdin is copied to a temporary file first)" {
    mk_sine "$TMP/a.wav" 440 2 44100 2
    sox -q "$TMP/a.wav" "$TMP/a.flac"
    run -0 --separate-stderr bash -c "set -o pipefail; cat '$TMP/a.flac' | TMPDIR='$TMP' '$CMR_BINDIR/cmr-decode' | '$CMR_BINDIR/cmr-dump' -n 0"
    [[ "${lines[1]}" == 'tensor kind=audio track="-" index=0 offset=0 rate=44100 shape=[65536,2] '* ]]
    [ "${lines[3]}" = 'end track="-" frames=2' ]
    # the temporary is gone
    [ "$(ls "$TMP")" = "$(printf 'a.flac\na.wav')" ]
    sox -q "$TMP/a.wav" "$TMP/a.mp3" || skip "sox cannot write mp3"
    run -0 --separate-stderr bash -c "set -o pipefail; cat '$TMP/a.mp3' | '$CMR_BINDIR/cmr-decode' | '$CMR_BINDIR/cmr-dump' -n 0"
    [[ "${lines[1]}" == 'tensor kind=audio track="-" index=0 offset=0 rate=44100 shape=[65536,2] '* ]]
    run -1 --separate-stderr bash -c "echo garbage | '$CMR_BINDIR/cmr-decode' > /dev/null"
    [ "${stderr_lines[0]}" = "cmr-decode: -: Format not recognised." ]
}

@test "cmr-decode: a missing file is exit 1 with a message naming it" {
    run -1 --separate-stderr decode_dump "$TMP/nope.wav"
    [ "${stderr_lines[0]}" = "cmr-decode: $TMP/nope.wav: No such file or directory" ]
    [ "${#lines[@]}" -eq 1 ]    # the header only
}

@test "cmr-decode: a file that is not audio is exit 1 with a message naming it" {
    echo "this is a text file, not audio; it is long enough to look like something" > "$TMP/text.wav"
    run -1 --separate-stderr decode "$TMP/text.wav"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/text.wav: "* ]]
    : > "$TMP/empty.flac"
    run -1 --separate-stderr decode "$TMP/empty.flac"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/empty.flac: "* ]]
    # -q silences warnings, not the error that stops the stream (file or --list)
    run -1 --separate-stderr decode -q "$TMP/text.wav"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/text.wav: "* ]]
    printf 'path\n%s\n' "$TMP/text.wav" > "$TMP/list.tsv"
    run -1 --separate-stderr decode -q --list "$TMP/list.tsv"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/text.wav: "* ]]
}

@test "cmr-decode: a file with 0 sample frames is an error: no audio" {
    sox -q -n -r 16000 -c 1 -b 16 "$TMP/zero.wav" trim 0 0
    run -1 --separate-stderr decode "$TMP/zero.wav"
    [ "${stderr_lines[0]}" = "cmr-decode: $TMP/zero.wav: no audio (0 sample frames)" ]
}

@test "cmr-decode --keep-going: failed tracks get an end frame with error; exit 1 at the end" {
    mk_sine "$TMP/a.wav" 440 0.5
    mk_sine "$TMP/c.wav" 880 0.5
    echo "not audio" > "$TMP/b.wav"
    run -1 --separate-stderr decode_dump --keep-going "$TMP/a.wav" "$TMP/b.wav" "$TMP/nope.wav" "$TMP/c.wav"
    [ "${stderr_lines[0]%%:*}" = "cmr-decode" ]
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/b.wav: "* ]]
    [ "${stderr_lines[1]}" = "cmr-decode: $TMP/nope.wav: No such file or directory" ]
    [ "${stderr_lines[2]}" = "cmr-decode: 2 of 4 tracks failed" ]
    [ "${#lines[@]}" -eq 7 ]
    [ "${lines[2]}" = "end track=\"$TMP/a.wav\" frames=1" ]
    [[ "${lines[3]}" == "end track=\"$TMP/b.wav\" frames=0 error=\"$TMP/b.wav: "* ]]
    [ "${lines[4]}" = "end track=\"$TMP/nope.wav\" frames=0 error=\"$TMP/nope.wav: No such file or directory\"" ]
    [ "${lines[6]}" = "end track=\"$TMP/c.wav\" frames=1" ]
}

@test "cmr-decode: without --keep-going the first failure stops the stream" {
    mk_sine "$TMP/a.wav" 440 0.5
    run -1 --separate-stderr decode_dump "$TMP/a.wav" "$TMP/nope.wav" "$TMP/a.wav.2"
    [ "${#lines[@]}" -eq 3 ]
    [ "${lines[2]}" = "end track=\"$TMP/a.wav\" frames=1" ]
}

@test "cmr-decode: a file that fails in the middle: error end frame with -k, an open track without" {
    mk_sine "$TMP/a.wav" 440 3 44100 2
    sox -q "$TMP/a.wav" "$TMP/a.flac"
    head -c 30000 "$TMP/a.flac" > "$TMP/cut.flac"
    run -1 --separate-stderr decode_dump -k --chunk 1000 "$TMP/cut.flac"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/cut.flac: decoding failed: "* ]]
    [[ "${lines[-1]}" =~ ^end\ track=\"$TMP/cut.flac\"\ frames=([0-9]+)\ error=\"$TMP/cut.flac:\ decoding\ failed ]]
    [ "${BASH_REMATCH[1]}" -gt 0 ]
    [ "${BASH_REMATCH[1]}" -eq $(( ${#lines[@]} - 2 )) ]
    # without -k the track is left open: the next stage sees a truncated stream
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' --chunk 1000 '$TMP/cut.flac' 2>/dev/null | '$CMR_BINDIR/cmr-resample' > /dev/null"
    [[ "${stderr_lines[0]}" == "cmr-resample: stdin: frame "*": stream ends inside track \"$TMP/cut.flac\" (no end frame)" ]]
}

@test "cmr-decode: the same file twice is a usage error (track ids must be unique)" {
    mk_sine "$TMP/a.wav" 440 0.1
    run -2 --separate-stderr cmr decode "$TMP/a.wav" "$TMP/a.wav"
    [ "${stderr_lines[0]}" = "cmr-decode: the same file twice: arguments: duplicate track id '$TMP/a.wav' (lines 1 and 2)" ]
}

@test "cmr-decode --list: track ids, metadata columns, paths relative to the list" {
    mkdir -p "$TMP/lists/audio" "$TMP/elsewhere"
    mk_sine "$TMP/lists/audio/a.wav" 440 0.5
    mk_sine "$TMP/b.wav" 880 0.5
    printf 'path\ttrack\tsplit\tlabel\naudio/a.wav\tA\ttraining\tRock,Pop\n%s\tB\ttest\t\n' "$TMP/b.wav" > "$TMP/lists/list.tsv"
    cd "$TMP/elsewhere"
    run -0 --separate-stderr decode_dump --list ../lists/list.tsv
    [[ "${lines[0]}" == *'"list":"../lists/list.tsv","tracks":"2"}]' ]]
    [[ "${lines[1]}" == 'tensor kind=audio track="A" index=0 offset=0 rate=16000 shape=[8000,1] '*' meta={"split":"training","label":"Rock,Pop"} info={}' ]]
    [ "${lines[2]}" = 'end track="A" frames=1' ]
    [[ "${lines[3]}" == 'tensor kind=audio track="B" '*' meta={"split":"test","label":""} info={}' ]]
}

@test "cmr-decode --list: without a track column the id is the path as written" {
    mkdir "$TMP/d"
    mk_sine "$TMP/d/a.wav" 440 0.2
    printf 'path\nd/a.wav\nd/b.wav\n' > "$TMP/l.tsv"
    run -1 --separate-stderr decode_dump --list "$TMP/l.tsv"
    [[ "${lines[1]}" == 'tensor kind=audio track="d/a.wav" '* ]]
    # messages name the resolved path
    [ "${stderr_lines[0]}" = "cmr-decode: $TMP/d/b.wav: No such file or directory" ]
}

@test "cmr-decode --list: bad lists are exit 1 with the line" {
    mk_sine "$TMP/a.wav" 440 0.1
    printf 'file\ttrack\na.wav\t1\n' > "$TMP/l.tsv"
    run -1 --separate-stderr cmr decode --list "$TMP/l.tsv"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/l.tsv:1: no 'path' column in the header"* ]]
    printf 'path\ttrack\na.wav\t1\na.wav\t1\n' > "$TMP/l.tsv"
    run -1 --separate-stderr cmr decode --list "$TMP/l.tsv"
    [ "${stderr_lines[0]}" = "cmr-decode: $TMP/l.tsv: duplicate track id '1' (lines 2 and 3)" ]
    printf 'path\ttrack\na.wav\n' > "$TMP/l.tsv"
    run -1 --separate-stderr cmr decode --list "$TMP/l.tsv"
    [ "${stderr_lines[0]}" = "cmr-decode: $TMP/l.tsv:2: 1 fields, the header has 2 (fields are separated by one TAB)" ]
    : > "$TMP/l.tsv"
    run -1 --separate-stderr cmr decode --list "$TMP/l.tsv"
    [[ "${stderr_lines[0]}" == "cmr-decode: $TMP/l.tsv: empty list"* ]]
    run -1 --separate-stderr cmr decode --list "$TMP/missing.tsv"
    [ "${stderr_lines[0]}" = "cmr-decode: $TMP/missing.tsv: No such file or directory" ]
    # nothing was written: the list is checked before any output
    [ -z "$output" ]
}

@test "cmr-decode --shard: shards partition the tracks by position" {
    for i in 0 1 2 3 4; do mk_sine "$TMP/$i.wav" 440 0.1; done
    printf 'path\n0.wav\n1.wav\n2.wav\n3.wav\n4.wav\n' > "$TMP/l.tsv"
    run -0 --separate-stderr decode_dump --shard 0/2 --list "$TMP/l.tsv"
    [ "$(grep -c '^end' <<< "$output")" -eq 3 ]
    [[ "$(grep '^end' <<< "$output" | tr '\n' ' ')" == 'end track="0.wav" frames=1 end track="2.wav" frames=1 end track="4.wav" frames=1 ' ]]
    run -0 --separate-stderr decode_dump --shard 1/2 --list "$TMP/l.tsv"
    [[ "$(grep '^end' <<< "$output" | tr '\n' ' ')" == 'end track="1.wav" frames=1 end track="3.wav" frames=1 ' ]]
    [[ "${lines[0]}" == *'"shard":"1/2"'* ]]
}

@test "cmr-decode: a reader that stops early (head -c) ends it quietly" {
    mk_sine "$TMP/a.wav" 440 20 44100 2
    run bash -c "'$CMR_BINDIR/cmr-decode' --chunk 1024 '$TMP/a.wav' | head -c 100 | wc -c; echo \"\${PIPESTATUS[0]}\""
    [ "${lines[0]}" -eq 100 ]
    # killed by SIGPIPE (141) or a clean exit, never a crash or a hang
    [[ "${lines[1]}" == 141 || "${lines[1]}" == 0 || "${lines[1]}" == 1 ]]
    run bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/a.wav' | head -c 1000 >/dev/null; echo \"\${PIPESTATUS[0]}\""
    [[ "$output" == 141 || "$output" == 0 || "$output" == 1 ]]
}

@test "cmr-decode: memory stays bounded for a long track" {
    [ -x /usr/bin/time ] || skip "/usr/bin/time not installed"
    ! ldd "$CMR_BINDIR/cmr-decode" | grep -q libasan || skip "AddressSanitizer build"
    sox -q -n -r 44100 -c 2 -b 16 "$TMP/long.wav" synth 180 sine 440 vol 0.5
    # 3 minutes of stereo is 64 MB as float; the decoder holds one chunk
    run -0 --separate-stderr bash -c "/usr/bin/time -f '%M' '$CMR_BINDIR/cmr-decode' '$TMP/long.wav' > /dev/null"
    kb=${stderr_lines[-1]}
    echo "max RSS ${kb} kB"
    [ "$kb" -lt 40000 ]
}

@test "cmr-decode: strings that are not UTF-8 never reach a frame (issue 11 I)" {
    mk_sine "$TMP/a.wav" 440 0.1
    # a file name with the Latin-1 byte 0xe9
    cp "$TMP/a.wav" "$TMP/caf"$'\xe9'".wav"
    run -1 --separate-stderr cmr decode "$TMP/caf"$'\xe9'".wav"
    [[ "$stderr" == "cmr-decode: track id '"*"/caf...' is not valid UTF-8 (byte 0xe9 at offset "*"); give the file in a track list (cmr-decode --list) with a UTF-8 'track' column" ]]
    [ -z "$output" ]
    # a metadata field \xff\xfe in a track list
    printf 'path\ttrack\tlabel\na.wav\tx\t\xff\xfe\n' > "$TMP/l1.tsv"
    run -1 --separate-stderr cmr decode --list "$TMP/l1.tsv"
    [ "$stderr" = "cmr-decode: $TMP/l1.tsv:2: column 'label': '' is not valid UTF-8 (byte 0xff at offset 0)" ]
    # the same file with a UTF-8 track id: fine, and the id is read back as written
    printf 'path\ttrack\ncaf\xe9.wav\tcaf\xc3\xa9\n' > "$TMP/l2.tsv"
    run -0 --separate-stderr bash -c "set -o pipefail; '$CMR_BINDIR/cmr-decode' --list '$TMP/l2.tsv' | '$CMR_BINDIR/cmr-dump'"
    [[ "${lines[1]}" == 'tensor kind=audio track="café" '* ]]
}

@test "cmr-decode: a float file with an infinite sample fails that track, naming the time; --keep-going goes on (issue 11)" {
    mk_sine "$TMP/a.wav" 440 0.1
    perl -e 'binmode STDOUT; $d = pack("f<*", map { $_ == 20000 ? 9**9**9 : 0.1 } 0 .. 31999);
             print "RIFF", pack("V", 36 + length $d), "WAVEfmt ", pack("VvvVVvv", 16, 3, 1, 16000, 64000, 4, 32),
                   "data", pack("V", length $d), $d' > "$TMP/inf.wav"
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' '$TMP/inf.wav' | '$CMR_BINDIR/cmr-dump' -n 0; exit \${PIPESTATUS[0]}"
    [ "$stderr" = "cmr-decode: track \"$TMP/inf.wav\": audio frame 0: sample 20000 (channel 0, 1.250000 s into the track) is infinite" ]
    run -1 --separate-stderr bash -c "'$CMR_BINDIR/cmr-decode' -k '$TMP/inf.wav' '$TMP/a.wav' | '$CMR_BINDIR/cmr-dump' -n 0; exit \${PIPESTATUS[0]}"
    [[ "${lines[1]}" == "end track=\"$TMP/inf.wav\" frames=0 error=\"track \\\"$TMP/inf.wav\\\": audio frame 0: sample 20000 "* ]]
    [[ "${lines[2]}" == "tensor kind=audio track=\"$TMP/a.wav\" "* ]]
}
