#!/bin/bash
# radio.sh: embeddings of an internet radio stream, continuously, as frames on stdout.
#
#   pipelines/radio.sh [--model m.cmr] [OPTION]... URL | cmr-dump
#   pipelines/radio.sh [--model m.cmr] --index catalogue.cmri URL
#
# URL is an HTTP(S) Ogg/Vorbis, Ogg/Opus, MP3 or AAC stream (Icecast, Shoutcast).
# The pipeline is GStreamer's:
#   souphttpsrc ! decodebin ! audioconvert ! audioresample ! (16 kHz mono F32)
#     ! queue (bounded, leaky) ! cmrmel ! cmrencode ! cmrframes ! fdsink fd=1
# One embedding per 3 s segment (or per --hop frames), each frame carrying
# info "time" (stream time, s), "duration" and "wallclock" (UNIX time, s), and
# the station's title tags in meta when it sends them.
#
# The stream goes on across network trouble: when the connection drops, the
# server stalls for --timeout seconds, or decoding fails, the script says so on
# stderr and connects again after a backoff (1 s, doubling up to --backoff-max
# after each connection that ends within 10 s; back to 1 s after a longer one).
# Each connection is its own track ("<track>#<n>") in a stream of its own
# (header, frames, end frame), so stdout is a sequence of complete frame
# streams that every cmr filter reads as one (docs/frames.md). Memory stays
# bounded: the queue before cmrmel holds at most --buffer seconds of audio and
# drops the oldest when the encoder falls behind.
#
# With --index, stdout is text instead: every --every seconds of stream, the
# --k nearest catalogue tracks (cmr-index, docs/index.md) to the mean of the
# embeddings of the last --window seconds (their mean and std for an index
# of summaries), as cmr-index query --tsv prints them.
#
# Exit status: 0 after --duration or on SIGINT/SIGTERM (the open track is
# ended cleanly), 1 after --retries failed connections in a row, 2 usage.
set -euo pipefail

prog=radio.sh
usage() {
    cat <<EOF
Usage: $prog [--model FILE] [OPTION]... URL
Embeddings of an HTTP radio stream as cmr frames on stdout, reconnecting on errors.

  -m, --model FILE     cmr model file (cmr-model, cmr-train) [\$CMR_MODEL, else
                       the installed cmr-base: what cmrencode uses when unset]
      --mel            write log-mel frames instead of embeddings (no model)
  -H, --hop N          mel frames between segment starts [188: back to back]
  -t, --track NAME     track id prefix [the URL]
  -d, --duration S     stop after S seconds (0: run until killed) [0]
  -r, --retries N      give up after N failed connections in a row (0: never) [0]
  -T, --timeout S      a stall of S seconds counts as a dropped connection [10]
  -B, --backoff-max S  longest wait between connections [60]
  -b, --buffer S       seconds of audio the queue may hold before dropping [30]
  -i, --index FILE     print the nearest tracks of this cmr-index catalogue
                       (text on stdout) instead of writing frames
  -k, --k N            tracks per answer, with --index [5]
  -w, --window S       seconds of stream each answer summarises [30]
  -e, --every S        seconds between answers [5]
  -q, --quiet          no messages on stderr except errors
  -h, --help           this help

Environment: GST_LAUNCH (default gst-launch-1.0); GST_PLUGIN_PATH must reach
the cmr plugin if it is not installed.
Exit status: 0 after --duration or on SIGINT/SIGTERM, 1 after --retries
failed connections in a row or a bad model, 2 usage.
EOF
}

die_usage() { echo "$prog: $*" >&2; echo "Try '$prog --help'." >&2; exit 2; }
say() { [ "$quiet" = 1 ] || echo "$prog: $*" >&2; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "${#1}" -le 9 ]; }

model="" mel=0 hop=188 track="" duration=0 retries=0 timeout=10 backoff_max=60 buffer=30 quiet=0
index="" k=5 window=30 every=5
while [ $# -gt 0 ]; do
    case "$1" in
    -m|--model) [ $# -ge 2 ] || die_usage "$1 needs a value"; model=$2; shift 2 ;;
    --mel) mel=1; shift ;;
    -H|--hop) [ $# -ge 2 ] || die_usage "$1 needs a value"; hop=$2; shift 2 ;;
    -t|--track) [ $# -ge 2 ] || die_usage "$1 needs a value"; track=$2; shift 2 ;;
    -d|--duration) [ $# -ge 2 ] || die_usage "$1 needs a value"; duration=$2; shift 2 ;;
    -r|--retries) [ $# -ge 2 ] || die_usage "$1 needs a value"; retries=$2; shift 2 ;;
    -T|--timeout) [ $# -ge 2 ] || die_usage "$1 needs a value"; timeout=$2; shift 2 ;;
    -B|--backoff-max) [ $# -ge 2 ] || die_usage "$1 needs a value"; backoff_max=$2; shift 2 ;;
    -b|--buffer) [ $# -ge 2 ] || die_usage "$1 needs a value"; buffer=$2; shift 2 ;;
    -i|--index) [ $# -ge 2 ] || die_usage "$1 needs a value"; index=$2; shift 2 ;;
    -k|--k) [ $# -ge 2 ] || die_usage "$1 needs a value"; k=$2; shift 2 ;;
    -w|--window) [ $# -ge 2 ] || die_usage "$1 needs a value"; window=$2; shift 2 ;;
    -e|--every) [ $# -ge 2 ] || die_usage "$1 needs a value"; every=$2; shift 2 ;;
    -q|--quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die_usage "unknown option '$1'" ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || die_usage "one URL expected, got $#"
url=$1
[[ "$url" =~ ^https?:// ]] || die_usage "URL must start with http:// or https://, got '$url'"
is_uint "$hop" && [ "$hop" -ge 1 ] && [ "$hop" -le 1000000 ] ||
    die_usage "--hop takes an integer in [1, 1000000], got '$hop'"
is_uint "$duration" || die_usage "--duration takes a whole number of seconds, got '$duration'"
is_uint "$retries" || die_usage "--retries takes an integer >= 0, got '$retries'"
is_uint "$timeout" && [ "$timeout" -ge 1 ] || die_usage "--timeout takes an integer >= 1, got '$timeout'"
is_uint "$backoff_max" && [ "$backoff_max" -ge 1 ] ||
    die_usage "--backoff-max takes an integer >= 1, got '$backoff_max'"
is_uint "$buffer" && [ "$buffer" -ge 1 ] && [ "$buffer" -le 3600 ] ||
    die_usage "--buffer takes an integer in [1, 3600], got '$buffer'"
if [ "$mel" = 0 ] && [ -n "$model" ]; then
    [ -r "$model" ] || { echo "$prog: cannot read the model file '$model'" >&2; exit 1; }
fi
query=()
if [ -n "$index" ]; then
    [ "$mel" = 0 ] || die_usage "--index takes embeddings: leave out --mel"
    is_uint "$k" && [ "$k" -ge 1 ] || die_usage "--k takes an integer >= 1, got '$k'"
    is_uint "$window" && [ "$window" -ge 1 ] || die_usage "--window takes an integer >= 1, got '$window'"
    is_uint "$every" || die_usage "--every takes a whole number of seconds, got '$every'"
    query=("${CMR_BINDIR:+$CMR_BINDIR/}cmr-index" query --index "$index" -k "$k" --window "$window"
           --every "$every" --tsv)
    # a missing, corrupt or too small index fails here, not after connecting
    n=$("${CMR_BINDIR:+$CMR_BINDIR/}cmr-index" info "$index" | sed -n 's/^tracks *//p') || exit 1
    [ "$k" -le "$n" ] || { echo "$prog: --k $k, but the index holds $n tracks" >&2; exit 1; }
else
    [ -t 1 ] && die_usage "stdout is a terminal: pipe the frames into a cmr filter (e.g. | cmr-dump)"
fi
[ -n "$track" ] || track=$url
launch=${GST_LAUNCH:-gst-launch-1.0}
command -v "$launch" >/dev/null || { echo "$prog: $launch not found (apt-get install gstreamer1.0-tools)" >&2; exit 1; }

GST_CMR_CHECK_CAPS="audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved"
GST_CMR_MEL_CAPS="application/x-cmr-mel,n-mels=96,rate=16000,hop=256"
# gst-launch quoting: a string property in double quotes, with \ and " escaped
gst_quote() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

# no --model: cmrencode's own default (CMR_MODEL, else the installed cmr-base)
encode="cmrencode hop=$hop"
[ -z "$model" ] || encode="cmrencode model=$(gst_quote "$model") hop=$hop"
[ "$mel" = 1 ] && encode="identity"
sink="fdsink fd=1 sync=false"

# fail early, not at every reconnection, on a missing plugin or a bad model
if ! "$launch" -q fakesrc num-buffers=0 ! "$GST_CMR_CHECK_CAPS" ! cmrmel ! fakesink >/dev/null 2>&1; then
    echo "$prog: the cmr GStreamer plugin is not found (install it, or set GST_PLUGIN_PATH)" >&2
    exit 1
fi
if [ "$mel" = 0 ] && ! err=$("$launch" -q fakesrc num-buffers=0 \
        ! "$GST_CMR_MEL_CAPS" ! $encode ! fakesink 2>&1 >/dev/null); then
    echo "$prog: cannot use the model '${model:-the default (CMR_MODEL or cmr-base)}': ${err//$'\n'/ }" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cmr-radio.XXXXXX")
enc="" fetch=""
stopping=0
stop() {
    stopping=1
    # gst-launch -e turns SIGINT into EOS: the open track gets its end frame
    [ -n "$enc" ] && kill -INT "$enc" 2>/dev/null || true
    [ -n "$fetch" ] && kill -TERM "$fetch" 2>/dev/null || true
}
catpid=""
cleanup() {
    rm -rf "$tmp"
    # let the cat below write everything before we return
    if [ -n "$catpid" ]; then exec 1>&-; wait "$catpid" 2>/dev/null || true; fi
}
trap stop INT TERM
trap cleanup EXIT
# --index: the frames go through cmr-index query, which prints the answers
if [ ${#query[@]} -gt 0 ]; then
    exec > >(exec "${query[@]}")
    catpid=$!
fi
# fdsink seeks a regular file back to its start, and every connection is a new
# gst-launch: a file on stdout is written through one cat, which only appends
if [ -f "/proc/$$/fd/1" ]; then
    exec > >(exec cat)
    catpid=$!
fi

# Each connection is two processes joined by a FIFO: one fetches the bytes
# (souphttpsrc, with its stall timeout), the other decodes and encodes them.
# Whatever happens to the network, the encoder only sees its input end, so it
# always ends its track with an end frame and stdout stays a valid stream.
start=$SECONDS
conn=0 failures=0 delay=1
while :; do
    conn=$((conn + 1))
    left=0
    if [ "$duration" -gt 0 ]; then
        left=$((duration - (SECONDS - start)))
        [ "$left" -gt 0 ] || break
    fi
    say "connection $conn to $url"
    t0=$SECONDS
    fifo=$tmp/stream.$conn
    mkfifo "$fifo"
    # shellcheck disable=SC2086
    "$launch" -q -e fdsrc fd=0 blocksize=4096 \
        ! decodebin ! audioconvert ! audioresample \
        ! audio/x-raw,format=F32LE,rate=16000,channels=1 \
        ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=$((buffer * 1000000000)) leaky=downstream \
        ! cmrmel ! $encode \
        ! cmrframes track="$(gst_quote "$track#$conn")" wallclock=true \
        ! $sink <"$fifo" 2> >(sed -u "s/^/$prog: gst: /" >&2) &
    enc=$!
    "$launch" -q souphttpsrc location="$(gst_quote "$url")" timeout="$timeout" retries=0 \
        iradio-mode=false ! fdsink fd=1 sync=false >"$fifo" 2> >(sed -u "s/^/$prog: gst: /" >&2) &
    fetch=$!
    # the duration limit: end the connection cleanly when time is up
    watchdog=""
    if [ "$duration" -gt 0 ]; then
        ( sleep "$left"; kill -INT "$enc" 2>/dev/null; kill -TERM "$fetch" 2>/dev/null ) &
        watchdog=$!
    fi
    # a decoder that outlives its input by more than the stall timeout plus
    # the buffer is stuck: gst-launch-1.0 (1.22) can lose an error posted
    # before its main loop runs (decodebin on a connection that brought no
    # bytes) and then waits for ever; end it as a failed connection
    # (its sleeps hold no pipe: killed early, they leave nothing waiting on them)
    ( while kill -0 "$fetch" 2>/dev/null; do sleep 1 </dev/null >/dev/null 2>&1; done
      sleep $((timeout + buffer)) </dev/null >/dev/null 2>&1
      kill -0 "$enc" 2>/dev/null || exit 0
      echo "$prog: connection $conn: the decoder did not end after its input: stopping it" >&2
      kill -INT "$enc" 2>/dev/null; sleep 2 </dev/null >/dev/null 2>&1; kill -KILL "$enc" 2>/dev/null ) </dev/null >/dev/null &
    reaper=$!
    rc=0
    # wait returns early on a trapped signal: wait until the encoder is done
    while kill -0 "$enc" 2>/dev/null; do wait "$enc" || rc=$?; done
    kill "$reaper" 2>/dev/null || true
    wait "$reaper" 2>/dev/null || true
    # the encoder ends when the fetcher does; if it failed first, stop the fetcher
    frc=0
    [ "$rc" = 0 ] || kill -TERM "$fetch" 2>/dev/null || true
    wait "$fetch" || frc=$?
    enc="" fetch=""
    rm -f "$fifo"
    [ -n "$watchdog" ] && { kill "$watchdog" 2>/dev/null || true; wait "$watchdog" 2>/dev/null || true; }
    lasted=$((SECONDS - t0))
    if [ "$stopping" = 1 ]; then
        say "stopped after $((SECONDS - start)) s"
        exit 0
    fi
    if [ "$duration" -gt 0 ] && [ $((SECONDS - start)) -ge "$duration" ]; then
        say "done after $duration s, $conn connection(s)"
        exit 0
    fi
    [ "$rc" = 0 ] || echo "$prog: connection $conn: decoding failed (gst-launch exit $rc)" >&2
    if [ "$lasted" -ge 10 ]; then
        failures=0 delay=1
    else
        failures=$((failures + 1))
    fi
    if [ "$frc" = 0 ]; then
        say "connection $conn: the server ended the stream after $lasted s"
    else
        say "connection $conn: lost after $lasted s (network error or a stall over $timeout s)"
    fi
    if [ "$retries" -gt 0 ] && [ "$failures" -ge "$retries" ]; then
        echo "$prog: giving up after $failures failed connections in a row" >&2
        exit 1
    fi
    say "reconnecting in $delay s"
    sleep "$delay" &
    wait $! || true
    [ "$stopping" = 1 ] && exit 0
    if [ "$failures" -gt 0 ]; then
        delay=$((delay * 2))
        [ "$delay" -le "$backoff_max" ] || delay=$backoff_max
    fi
done
say "done after $duration s, $((conn - 1)) connection(s)"
