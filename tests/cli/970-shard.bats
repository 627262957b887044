#!/usr/bin/env bats
# Sharded extraction (docs/scaling.md): pipelines/extract-shard.sh makes shard
# I of N of a corpus's features; N shards run in parallel on one machine (as
# GNU parallel or a Slurm array would run them on many), and their parts,
# concatenated with cat, are one valid stream that equals the unsharded
# extraction (features.sh) up to track order. pipelines/slurm/extract.sbatch
# is checked with bash -n and run with the array variables set by hand.
load helpers

P=$CMR_SRCDIR/pipelines

# mk_set DIR N: N tracks of 4 s (tones and noise), DIR/list.tsv with path track split label
mk_set() {
    local d=$1 n=$2 i
    mkdir -p "$d"
    printf 'path\ttrack\tsplit\tlabel\n' >"$d/list.tsv"
    for i in $(seq 1 "$n"); do
        case $((i % 3)) in
            0) sox -q -R -n -r 22050 -c 2 -b 16 "$d/t$i.wav" synth 4 sine $((200 + 37 * i)) vol 0.4 ;;
            1) sox -q -R -n -r 16000 -c 1 -b 16 "$d/t$i.wav" synth 4 sine $((1500 + 91 * i)) tremolo 5 50 vol 0.4 ;;
            2) sox -q -R -n -r 16000 -c 1 -b 16 "$d/t$i.wav" synth 4 pinknoise vol 0.3 ;;
        esac
        printf 't%d.wav\ttrack%02d\t%s\tc%d\n' "$i" "$i" "$(case $((i % 4)) in 0) echo test ;; 3) echo validation ;; *) echo training ;; esac)" \
            $((i % 3)) >>"$d/list.tsv"
    done
}

# per-track dump of a stream, sorted by track (frames of a track keep their order); no headers
by_track() {
    cmr dump -n 100000 "$1" | awk '!/^header/ {
        match($0, /track="[^"]*"/); t = substr($0, RSTART, RLENGTH); print t "\t" (n[t]++) "\t" $0 }' |
        sort -t $'\t' -k1,1 -k2,2n | cut -f3-
}

# same_values A B: two by_track dumps hold the same frames, the data equal within
# 1e-5 (relative to 1 + |value|; cmr-encode batches segments across tracks, and a
# batch of other segments changes the last bits of the sums)
same_values() {
    paste -d '\n' <(by_track "$1") <(by_track "$2") | awk '
        function strip(s) { gsub(/ (min|max|mean)=[^ ]*/, "", s); sub(/ data=\[[^]]*\]/, "", s); return s }
        function vals(s, v) { match(s, /data=\[[^]]*\]/); return split(substr(s, RSTART + 6, RLENGTH - 7), v, ",") }
        NR % 2 == 1 { a = $0; next }
        { if (strip(a) != strip($0)) { print "frames differ:\n" a "\n" $0; bad = 1; exit 1 }
          n = vals(a, x); m = vals($0, y)
          if (n != m) { print "sizes differ: " a; bad = 1; exit 1 }
          for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d; t = x[i] < 0 ? -x[i] : x[i]
              if (d > 1e-5 * (1 + t)) { print "value " i " differs: " x[i] " vs " y[i]; bad = 1; exit 1 } }
          frames++ }
        END { if (!bad && frames == 0) { print "no frames"; exit 1 } }'
}

@test "shard: extract-shard.sh usage and bad shard numbers exit 2" {
    run -2 --separate-stderr "$P/extract-shard.sh" a b
    [[ "$stderr" == "usage: extract-shard.sh LIST OUTDIR I N [MODEL.cmr]" ]]
    for bad in "3 3" "-1 2" "x 2" "0 0"; do
        set -- $bad
        run -2 --separate-stderr "$P/extract-shard.sh" "$TMP/list.tsv" "$TMP/out" "$1" "$2"
        [[ "$stderr" == "extract-shard.sh: I and N are integers with 0 <= I < N, got '$1' and '$2'" ]]
    done
    run -1 --separate-stderr "$P/extract-shard.sh" "$TMP/nope.tsv" "$TMP/out" 0 2
    [[ "$stderr" == *"error: $TMP/nope.tsv: no such file (or empty)" ]]
    [ ! -e "$TMP/out" ]
}

@test "shard: 3 shards in parallel, concatenated, equal the unsharded MFCC features up to track order" {
    mk_set "$TMP/d" 10
    "$P/features.sh" "$TMP/d/list.tsv" "$TMP/whole.cmr" 2>/dev/null
    # the shards as independent processes, 3 at a time (xargs -P: what GNU parallel does across machines)
    run -0 --separate-stderr bash -c "printf '%s\n' 0 1 2 | xargs -P 3 -I{} '$P/extract-shard.sh' '$TMP/d/list.tsv' '$TMP/parts' {} 3"
    [ "$(ls "$TMP/parts")" = "$(printf 'part-00000-of-00003.cmr\npart-00001-of-00003.cmr\npart-00002-of-00003.cmr')" ]
    cat "$TMP"/parts/part-*-of-00003.cmr >"$TMP/cat.cmr"
    # one valid stream: three headers, every track once, metadata kept
    run -0 --separate-stderr cmr dump -n 0 "$TMP/cat.cmr"
    [ "$(grep -c '^header' <<<"$output")" -eq 3 ]
    [ "$(grep -c '^tensor kind=summary .* shape=\[80\]' <<<"$output")" -eq 10 ]
    [ "$(grep -o 'track="track[0-9]*"' <<<"$output" | sort -u | wc -l)" -eq 10 ]
    [[ "$output" == *'header version=1 provenance=[cmr-decode{'*'"shard":"1/3"'* ]]
    # shard 1 of 3 is tracks 2, 5, 8 of the list (counted from 0: 1, 4, 7)
    run -0 cmr dump -n 0 "$TMP/parts/part-00001-of-00003.cmr"
    [ "$(grep -o 'track="track[0-9]*"' <<<"$output" | sort -u | tr '\n' ' ')" = 'track="track02" track="track05" track="track08" ' ]
    # the same values, bit for bit, as one process over the whole list
    diff <(by_track "$TMP/whole.cmr") <(by_track "$TMP/cat.cmr")
    # a downstream filter reads the concatenation like one stream
    run -0 --separate-stderr "$P/evaluate.sh" classify "$TMP/cat.cmr" "$TMP/c.json"
    [ "$(wc -l <"$TMP/c.json")" -eq 2 ]
}

@test "shard: encoder features, shards in background jobs; a part that exists is not redone" {
    mk_set "$TMP/d" 7
    cmr model init -q --kind encoder --width 0.0625 --seed 3 "$TMP/m.cmr"
    "$P/features.sh" "$TMP/d/list.tsv" "$TMP/whole.cmr" "$TMP/m.cmr" 2>/dev/null
    "$P/extract-shard.sh" "$TMP/d/list.tsv" "$TMP/parts" 0 2 "$TMP/m.cmr" 2>/dev/null &
    "$P/extract-shard.sh" "$TMP/d/list.tsv" "$TMP/parts" 1 2 "$TMP/m.cmr" 2>/dev/null &
    wait %1 && wait %2
    cat "$TMP"/parts/part-*-of-00002.cmr >"$TMP/cat.cmr"
    run -0 cmr dump -n 0 "$TMP/cat.cmr"
    [ "$(grep -c '^tensor kind=summary .* shape=\[256\]' <<<"$output")" -eq 7 ]
    same_values "$TMP/whole.cmr" "$TMP/cat.cmr"
    [ -z "$(ls "$TMP/parts" | grep tmp)" ]
    run -0 --separate-stderr "$P/extract-shard.sh" "$TMP/d/list.tsv" "$TMP/parts" 1 2 "$TMP/m.cmr"
    [[ "$stderr" == *"part-00001-of-00002.cmr exists: nothing to do" ]]
}

@test "shard: slurm/extract.sbatch parses, refuses to run outside an array, runs as array tasks" {
    local s=$P/slurm/extract.sbatch
    bash -n "$s"
    grep -q '^#SBATCH --job-name=cmr-extract' "$s"
    run -2 --separate-stderr env -u SLURM_ARRAY_TASK_ID bash "$s" list out
    [[ "$stderr" == *"not a job array task: submit with sbatch --array=0-(N-1)"* ]]
    run -2 --separate-stderr bash "$s" onlyone
    [[ "$stderr" == "usage: sbatch --array=0-(N-1) extract.sbatch LIST OUTDIR [MODEL.cmr]" ]]
    mk_set "$TMP/d" 5
    "$P/features.sh" "$TMP/d/list.tsv" "$TMP/whole.cmr" 2>/dev/null
    # what Slurm sets for `sbatch --array=4-6`, submitted from the checkout; relative paths from there
    cd "$TMP"
    for id in 4 5 6; do
        SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=4 SLURM_ARRAY_TASK_COUNT=3 SLURM_SUBMIT_DIR=$CMR_SRCDIR \
            bash "$s" d/list.tsv out 2>"$TMP/task$id.log"
    done
    [ "$(ls out | tr '\n' ' ')" = "part-00000-of-00003.cmr part-00001-of-00003.cmr part-00002-of-00003.cmr " ]
    cat out/part-*.cmr >"$TMP/cat.cmr"
    diff <(by_track "$TMP/whole.cmr") <(by_track "$TMP/cat.cmr")
    # no checkout at the submit directory and no CMR_PIPELINES
    run -2 --separate-stderr env SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=1 SLURM_SUBMIT_DIR=$TMP bash "$s" d/list.tsv out
    [[ "$stderr" == "extract.sbatch: no $TMP/pipelines/extract-shard.sh: submit from the cmr checkout or set CMR_PIPELINES" ]]
}
