#!/usr/bin/env bats
# pipelines/radio.sh against a local HTTP server (tests/gst/cmr-test-httpd,
# 127.0.0.1 only) that streams a music file the way an Icecast station does:
# a healthy stream, a server that drops the connection mid-stream, one that
# stalls, one that is gone, and a stop by signal (issue 6). Every run is
# bounded by --duration and by the server's own --lifetime.
load helpers

RADIO="$CMR_SRCDIR/pipelines/radio.sh"
HTTPD="$CMR_BUILDDIR/tests/gst/cmr-test-httpd"

setup_file() {
    export RADIO_MODEL="$BATS_FILE_TMPDIR/m.cmr" RADIO_SONG="$BATS_FILE_TMPDIR/song.ogg"
    "$CMR_BINDIR/cmr-model" init --kind encoder --width 0.25 --seed 3 "$RADIO_MODEL" 2>/dev/null || true
    # 30 s of plucked chords (about 75 kB of Ogg/Vorbis)
    sox -q -R -n -r 16000 -c 1 -b 16 "$BATS_FILE_TMPDIR/song.wav" synth 30 pluck C3 pluck E3 \
        pluck G3 pluck C4 remix - fade 0 30 0.1 tremolo 5 40 vol 0.5 &&
        sox -q "$BATS_FILE_TMPDIR/song.wav" "$RADIO_SONG" || true
}

setup() {
    setup_tmp
    command -v gst-launch-1.0 >/dev/null ||
        skip "gst-launch-1.0 not found (apt-get install gstreamer1.0-tools)"
    [ -e "$CMR_BUILDDIR/gst-plugins/libgstcmr.la" ] ||
        skip "the GStreamer plugin was not built (configure found no GStreamer)"
    [ -x "$HTTPD" ] || skip "tests/gst/cmr-test-httpd not built"
    export GST_PLUGIN_PATH_1_0="$CMR_BUILDDIR/gst-plugins"
    export GST_REGISTRY_1_0="$CMR_BUILDDIR/tests/gst/registry-960.bin"
    local e
    for e in souphttpsrc fdsrc decodebin oggdemux vorbisdec audioconvert audioresample queue cmrmel; do
        gst-inspect-1.0 "$e" >/dev/null 2>&1 ||
            skip "GStreamer element $e not found (apt-get install gstreamer1.0-plugins-base gstreamer1.0-plugins-good)"
    done
    [ -s "$RADIO_MODEL" ] && [ -s "$RADIO_SONG" ] || skip "could not make the test model or song"
    SERVER=""
}

teardown() {
    if [ -n "${SERVER:-}" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    teardown_tmp
}

# start_server [cmr-test-httpd options]: serves the song, sets URL and SERVER
start_server() {
    "$HTTPD" --file "$RADIO_SONG" --port-file "$TMP/port" --lifetime 40 "$@" 2>"$TMP/httpd.log" &
    SERVER=$!
    local i
    for i in $(seq 50); do
        [ -s "$TMP/port" ] && break
        sleep 0.1
    done
    [ -s "$TMP/port" ]
    URL="http://127.0.0.1:$(cat "$TMP/port")/stream.ogg"
}

# tracks FILE: "TRACK FRAMES" per end frame
tracks() {
    cmr dump "$1" | sed -n 's/^end track="\([^"]*\)" frames=\([0-9-]*\).*/\1 \2/p'
}

@test "radio.sh: --help, usage errors, and a bad model" {
    run -0 "$RADIO" --help
    [[ "$output" == "Usage: radio.sh [--model FILE]"* ]]
    run -2 --separate-stderr "$RADIO" --model "$RADIO_MODEL"
    [[ "$stderr" == "radio.sh: one URL expected, got 0"* ]]
    run -2 --separate-stderr "$RADIO" --model "$RADIO_MODEL" ftp://example/stream
    [[ "$stderr" == "radio.sh: URL must start with http:// or https://"* ]]
    # no --model: cmrencode's default (CMR_MODEL here), checked before connecting
    CMR_MODEL="$TMP/missing.cmr" run -1 --separate-stderr "$RADIO" http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: cannot use the model 'the default (CMR_MODEL or cmr-base)': "* ]]
    run -2 --separate-stderr "$RADIO" --model "$RADIO_MODEL" --hop 0 http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: --hop takes an integer in [1, 1000000], got '0'"* ]]
    run -2 --separate-stderr "$RADIO" --model "$RADIO_MODEL" --timeout x http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: --timeout takes an integer >= 1, got 'x'"* ]]
    run -2 --separate-stderr "$RADIO" --bogus http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: unknown option '--bogus'"* ]]
    run -1 --separate-stderr "$RADIO" --model "$TMP/missing.cmr" http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: cannot read the model file"* ]]
    echo "not a model" >"$TMP/bad.cmr"
    run -1 --separate-stderr "$RADIO" --model "$TMP/bad.cmr" http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: cannot use the model '$TMP/bad.cmr'"* ]]
}

@test "radio.sh URL with no --model: cmrencode's default model (CMR_MODEL)" {
    start_server --rate 10000
    CMR_MODEL="$RADIO_MODEL" "$RADIO" --duration 4 "$URL" >"$TMP/out" 2>"$TMP/err"
    run -0 cmr dump "$TMP/out"
    [[ "${lines[0]}" == "header version=1 provenance=[cmrmel{"*"cmrencode{\"model\":\"$RADIO_MODEL\""* ]]
    [ "$(grep -c '^tensor kind=embedding .* shape=\[128\]' <<<"$output")" -ge 1 ]
}

@test "radio.sh: a healthy stream gives embeddings with stream and wall-clock times" {
    start_server --rate 10000
    "$RADIO" --model "$RADIO_MODEL" --duration 6 "$URL" >"$TMP/out" 2>"$TMP/err"
    run -0 cat "$TMP/err"
    [[ "$output" == "radio.sh: connection 1 to $URL"*"radio.sh: done after 6 s, 1 connection(s)" ]]
    run -0 cmr dump "$TMP/out"
    [[ "${lines[0]}" == "header version=1 provenance=[cmrmel{"*"cmrencode{"*"cmrframes{"* ]]
    [ "$(grep -c '^tensor kind=embedding' <<<"$output")" -ge 2 ]
    [[ "$output" == *'"time":0,"duration":3.008,"wallclock":'* ]]
    run -0 tracks "$TMP/out"
    [ "${#lines[@]}" -eq 1 ]
    [[ "${lines[0]}" == "$URL#1 "* ]]
}

@test "radio.sh: the server drops the connection mid-stream: it reconnects, one valid stream" {
    start_server --rate 10000 --drop-after 20000
    "$RADIO" --model "$RADIO_MODEL" --duration 8 "$URL" >"$TMP/out" 2>"$TMP/err"
    run -0 cat "$TMP/err"
    [[ "$output" == *"radio.sh: connection 1: the server ended the stream after"* ]]
    [[ "$output" == *"radio.sh: reconnecting in 1 s"* ]]
    [[ "$output" == *"radio.sh: connection 2 to $URL"* ]]
    run -0 tracks "$TMP/out"
    [ "${#lines[@]}" -eq 2 ]
    [[ "${lines[0]}" == "$URL#1 "* ]]
    [[ "${lines[1]}" == "$URL#2 "* ]]
    # the first connection carried 20 kB (about 6 s of audio after the Vorbis headers)
    [ "${lines[0]##* }" -ge 1 ]
    run -0 cmr summarize --text "$TMP/out"
    [ "${#lines[@]}" -eq 2 ]
}

@test "radio.sh: a stalled server counts as a drop after --timeout" {
    start_server --rate 10000 --stall-after 20000
    "$RADIO" --model "$RADIO_MODEL" --duration 9 --timeout 2 "$URL" >"$TMP/out" 2>"$TMP/err"
    run -0 cat "$TMP/err"
    [[ "$output" == *"radio.sh: connection 1: lost after"*"(network error or a stall over 2 s)"* ]]
    [[ "$output" == *"radio.sh: connection 2 to"* ]]
    run -0 tracks "$TMP/out"
    [ "${#lines[@]}" -eq 2 ]
}

@test "radio.sh: no server: backoff 1 s, 2 s, then --retries gives up" {
    # a port that was just free: nothing listens there
    start_server --connections 1 --lifetime 1
    wait "$SERVER" || true
    SERVER=""
    local t0=$SECONDS
    run -1 --separate-stderr "$RADIO" --model "$RADIO_MODEL" --retries 3 --timeout 2 "$URL"
    [ -z "$output" ]
    [[ "$stderr" == *"reconnecting in 1 s"*"reconnecting in 2 s"* ]]
    [[ "$stderr" == *"radio.sh: giving up after 3 failed connections in a row" ]]
    [ $((SECONDS - t0)) -ge 3 ]
}

@test "radio.sh: SIGTERM ends the open track cleanly" {
    start_server --rate 10000
    "$RADIO" --model "$RADIO_MODEL" "$URL" >"$TMP/out" 2>"$TMP/err" &
    local pid=$! i
    for i in $(seq 100); do
        [ "$(stat -c %s "$TMP/out")" -gt 2000 ] && break
        sleep 0.1
    done
    sleep 1
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ]
    run -0 tracks "$TMP/out"
    [ "${#lines[@]}" -eq 1 ]
    [[ "$(cat "$TMP/err")" == *"radio.sh: stopped after"* ]]
}

@test "radio.sh --index: the nearest catalogue tracks to the last seconds of the stream" {
    # a catalogue of two tracks: the song the station plays, and a sine
    mk_sine "$TMP/sine.wav" 440 8
    printf 'path\ttrack\n%s\tsong.ogg\n%s\tsine.wav\n' "$RADIO_SONG" "$TMP/sine.wav" >"$TMP/list.tsv"
    cmr decode -q --list "$TMP/list.tsv" | cmr resample | cmr mel | cmr segment |
        cmr encode --model "$RADIO_MODEL" | cmr summarize >"$TMP/cat.msgpack"
    cmr index build --out "$TMP/cat.cmri" -q "$TMP/cat.msgpack"
    run -2 --separate-stderr "$RADIO" --model "$RADIO_MODEL" --index "$TMP/cat.cmri" --k 0 http://127.0.0.1:9/x
    [[ "$stderr" == "radio.sh: --k takes an integer >= 1, got '0'"* ]]
    run -1 --separate-stderr "$RADIO" --model "$RADIO_MODEL" --index "$TMP/cat.cmri" --k 3 http://127.0.0.1:9/x
    [ "$stderr" = "radio.sh: --k 3, but the index holds 2 tracks" ]
    start_server --rate 10000
    "$RADIO" --model "$RADIO_MODEL" --index "$TMP/cat.cmri" --k 2 --every 3 --duration 8 "$URL" \
        >"$TMP/out" 2>"$TMP/err"
    run -0 cat "$TMP/out"
    [ "${lines[0]}" = "query_track	rank	track	score" ]
    # answers at stream times 0, 3, 6 ...: at least two, each nearest the song
    [ "$(awk -F'\t' '$2 == 1' "$TMP/out" | wc -l)" -ge 2 ]
    [ -z "$(awk -F'\t' '$2 == 1 && $3 != "song.ogg"' "$TMP/out")" ]
    [[ "${lines[1]}" == "$URL#1@0.0s	1	song.ogg	"* ]]
}
