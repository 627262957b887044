#!/usr/bin/env bats
# pipelines/: the pipeline scripts and the make graph on seconds of synthetic
# audio (docs/pipelines.md). Training runs 2 steps once cmr-train is built.
load helpers

P=$CMR_SRCDIR/pipelines

# a make of our own, not a child of the `make check` that runs us
pmake() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$P" "$@"; }

# mk_set DIR: 12 tracks of 8 s in 3 timbres (label), split 2/1/1 per label,
# two playlists, tags, and DIR/list.tsv with path track split label playlists tags
mk_set() {
    local d=$1 i=0 label split pl tags
    mkdir -p "$d"
    printf 'path\ttrack\tsplit\tlabel\tplaylists\ttags\n' >"$d/list.tsv"
    for label in low high noise; do
        for split in training training validation test; do
            i=$((i + 1))
            case $label in
                low)   sox -q -R -n -r 16000 -c 1 -b 16 "$d/t$i.wav" synth 8 sine $((110 + 7 * i)) sine $((220 + 14 * i)) vol 0.4 ;;
                high)  sox -q -R -n -r 16000 -c 1 -b 16 "$d/t$i.wav" synth 8 sine $((1800 + 50 * i)) tremolo 6 60 vol 0.4 ;;
                noise) sox -q -R -n -r 16000 -c 1 -b 16 "$d/t$i.wav" synth 8 pinknoise vol 0.3 ;;
            esac
            pl=
            [ $i -le 5 ] && pl=pl-a
            [ $i -ge 8 ] && pl=pl-b
            [ $i -eq 5 ] && pl=pl-a,pl-b
            # relative paths: cmr-decode reads them against the list's folder
            case $label in low) tags=tonal,bass ;; high) tags=tonal,bright ;; noise) tags=noisy ;; esac
            printf 't%d.wav\t%s/t%02d\t%s\t%s\t%s\t%s\n' $i $label $i $split $label "$pl" $tags >>"$d/list.tsv"
        done
    done
}

have_train() { [ -x "$CMR_BINDIR/cmr-train" ]; }

@test "pipelines: the scripts print their usage and exit 2 on bad arguments" {
    for s in audio features evaluate train table3 plot pretrain-val pretrain-curve pretrain-card pretrain-eval \
        pretrain-select; do
        run -2 --separate-stderr "$P/$s.sh"
        [[ "$stderr" == "usage: $s.sh "* ]]
    done
    run -2 --separate-stderr "$P/evaluate.sh" guess "$TMP/f.cmr" "$TMP/o.json"
    run -1 --separate-stderr "$P/evaluate.sh" classify "$TMP/nope.cmr" "$TMP/o.json"
    # the stamp is the seconds since the script started: 0 or 1 on a loaded machine
    [[ "$stderr" =~ ^\[evaluate\ +[01]s\]\ error:\ .*/nope\.cmr:\ no\ such\ file\ \(or\ empty\)$ ]]
    run -2 --separate-stderr "$P/train.sh" "$P/Makefile" "$TMP/m" adjacent hinge 0.25 1 1
    [[ "$stderr" == *"LOSS is infonce, multi or cpc, got 'hinge'"* ]]
    [ ! -e "$TMP/o.json" ]
}

@test "pipelines: features.sh (MFCC) gives one 80-value summary per track, metadata kept" {
    mk_set "$TMP/d"
    run -0 --separate-stderr "$P/features.sh" "$TMP/d/list.tsv" "$TMP/mfcc.cmr"
    run -0 cmr dump -n 0 "$TMP/mfcc.cmr"
    [ "$(grep -c '^tensor kind=summary .* shape=\[80\]' <<<"$output")" -eq 12 ]
    [[ "$output" == *'track="noise/t12"'*'meta={"split":"test","label":"noise","playlists":"pl-b","tags":"noisy"}'* ]]
    [ -z "$(ls "$TMP" | grep tmp)" ]
}

@test "pipelines: evaluate.sh classify and recommend write JSON lines" {
    mk_set "$TMP/d"
    "$P/features.sh" "$TMP/d/list.tsv" "$TMP/f.cmr" 2>/dev/null
    run -0 --separate-stderr "$P/evaluate.sh" classify "$TMP/f.cmr" "$TMP/c.json"
    [ "$(wc -l <"$TMP/c.json")" -eq 2 ]
    grep -q '^{"classifier":"svm",.*"accuracy":' "$TMP/c.json"
    grep -q '^{"classifier":"logreg",.*"accuracy":' "$TMP/c.json"
    [[ "$stderr" == *"c.json: svm "*" logreg "* ]]
    NEGATIVES=all run -0 --separate-stderr "$P/evaluate.sh" recommend "$TMP/f.cmr" "$TMP/r.json"
    grep -q '"hr10":.*"mpr":.*"playlists":2,' "$TMP/r.json"
}

@test "pipelines: make table3 on MFCC alone, paths relative to the caller, then nothing to redo" {
    mk_set "$TMP/d"
    cd "$TMP"
    run -0 --separate-stderr pmake table3 GENRE=d/list.tsv PLAYLISTS=d/list.tsv CONFIGS= RESULTS=res NEGATIVES=all
    [ -s res/table3.md ] && [ -s res/table3.tsv ] && [ -s res/training-curves.png ]
    [[ "$output" == *"| MFCC | - | 40 | "*" (.397) | "* ]]
    head -n 1 res/table3.tsv | grep -q '^config	feature	loss	dim	genre_svm	genre_svm_paper	'
    grep -q '^mfcc	MFCC	-	40	[01]\.[0-9][0-9][0-9]	.397	' res/table3.tsv
    # the playlist task reads the genre task's features: one feature file
    [ "$(ls res/features/mfcc)" = genre.cmr ]
    [ ! -e res/scores/mfcc/inst.json ]
    before=$(stat -c %Y res/features/mfcc/genre.cmr res/scores/mfcc/*.json res/table3.md)
    sleep 1
    run -0 --separate-stderr pmake table3 GENRE=d/list.tsv PLAYLISTS=d/list.tsv CONFIGS= RESULTS=res NEGATIVES=all
    [ "$(stat -c %Y res/features/mfcc/genre.cmr res/scores/mfcc/*.json res/table3.md)" = "$before" ]
    [[ "$stderr" != *"[features"* ]]
}

@test "pipelines: make table3 with a tagging list adds the tag columns" {
    mk_set "$TMP/d"
    cd "$TMP"
    run -0 --separate-stderr pmake table3 TAGS=d/list.tsv CONFIGS= RESULTS=res
    [[ "$output" == *"| feature | loss | dim | Genre SVM | Genre LR | Inst SVM | Inst LR | HR@10 | MPR | tag ROC-AUC | tag PR-AUC |"* ]]
    [[ "$output" == *"| MFCC | - | 40 | - (.397) | - (.401) | - (.473) | - (.481) | - (.196) | - (.381) | "[01].[0-9][0-9][0-9]" | "[01].[0-9][0-9][0-9]" |"* ]]
    grep -q '"classifier":"logreg","task":"tags"' res/scores/mfcc/tags.json
}

@test "pipelines: make table3 without a task list, make train without DATA: exit 2" {
    cd "$TMP"
    run -2 --separate-stderr pmake table3 CONFIGS= RESULTS=res
    [[ "$stderr" == *"table3: give at least one of GENRE=, INSTRUMENT=, PLAYLISTS=, TAGS="* ]]
    run -2 --separate-stderr pmake train OUT=x
    [[ "$stderr" == *"train needs DATA=list.tsv and OUT=dir"* ]]
}

@test "pipelines: the learned branch encodes with a model file (an untrained cmr-model init)" {
    mk_set "$TMP/d"
    cmr model init -q --kind encoder --width 0.125 --seed 3 "$TMP/m.cmr"
    THREADS=1 run -0 --separate-stderr "$P/features.sh" "$TMP/d/list.tsv" "$TMP/e.cmr" "$TMP/m.cmr"
    run -0 cmr dump -n 0 "$TMP/e.cmr"
    [ "$(grep -c '^tensor kind=summary .* shape=\[256\]' <<<"$output")" -eq 12 ]
    [[ "$output" == *'info={"rows":2}'* ]]
}

@test "pipelines: make -j2 table3, all seven configurations wired (STANDIN=1: untrained models)" {
    mk_set "$TMP/d"
    cd "$TMP"
    run -0 --separate-stderr pmake -j2 table3 GENRE=d/list.tsv INSTRUMENT=d/list.tsv PLAYLISTS=d/list.tsv \
        RESULTS=res NEGATIVES=all STANDIN=1 WIDTH=0.125 THREADS=1
    [ "$(tail -n +2 res/table3.tsv | cut -f1 | tr '\n' ' ')" = "mfcc self-infonce self-multi adjacent-infonce adjacent-multi random-infonce random-multi cpc " ]
    # dims from the features: 40, 128, 640, 128, 640, 128, 640, 256
    [ "$(tail -n +2 res/table3.tsv | cut -f4 | tr '\n' ' ')" = "40 128 640 128 640 128 640 256 " ]
    # every task scored for every feature: no empty cell among ours
    [ -z "$(tail -n +2 res/table3.tsv | awk -F'\t' '$5 == "" || $7 == "" || $9 == "" || $11 == "" || $13 == "" || $15 == ""')" ]
    [[ "$output" == *"| MelCPC | InfoNCE | 256 | "*" (.480) | "* ]]
    grep -q 'strategy=sequence loss=cpc width=0.125' res/models/cpc/params.txt
    grep -q 'strategy=random loss=multi' res/models/random-multi/params.txt
    # one feature file per list, shared by the three tasks
    [ "$(ls res/features/cpc)" = genre.cmr ]
}

@test "pipelines: make train, 2 steps at a fixed seed: model, log with a finite loss, reused" {
    have_train || skip "cmr-train is not built yet"
    mk_set "$TMP/d"
    cd "$TMP"
    run -0 --separate-stderr pmake train DATA=d/list.tsv OUT=run STRATEGY=adjacent LOSS=infonce \
        WIDTH=0.125 EPOCHS=2 SEED=7 BATCH=12 THREADS=1
    [ -s run/model.cmr ] && [ -s run/train.tsv ]
    head -n 1 run/train.tsv | tr '\t' '\n' >"$TMP/cols"
    grep -qx step "$TMP/cols" && grep -qx epoch "$TMP/cols" && grep -qx loss "$TMP/cols"
    col=$(grep -nx loss "$TMP/cols" | cut -d: -f1)
    [ "$(tail -n +2 run/train.tsv | wc -l)" -eq 2 ]
    tail -n +2 run/train.tsv | awk -F'\t' -v c="$col" '$c + 0 != $c || $c != $c || $c > 1e30 { exit 1 }'
    # the loss decreases from the first step to the second (fixed seed: deterministic)
    tail -n +2 run/train.tsv | awk -F'\t' -v c="$col" 'NR == 1 { a = $c } NR == 2 { exit !($c < a) }'
    run -0 cmr model info run/model.cmr
    before=$(stat -c %Y run/model.cmr)
    sleep 1
    run -0 --separate-stderr pmake train DATA=d/list.tsv OUT=run STRATEGY=adjacent LOSS=infonce \
        WIDTH=0.125 EPOCHS=2 SEED=7 BATCH=12 THREADS=1
    [ "$(stat -c %Y run/model.cmr)" = "$before" ]
}

@test "pipelines: pretrain-val.sh pairs of the held-out tracks; pretrain-curve.sh scores each snapshot" {
    have_train || skip "cmr-train is not built yet"
    mk_set "$TMP/d"
    # the tracks of label "high" held out, as build-pretrain-data's tracks.tsv marks them
    awk -F'\t' -v OFS='\t' 'NR > 1 { $3 = $4 == "high" ? "heldout" : "training" } 1' "$TMP/d/list.tsv" > "$TMP/d/tracks.tsv"
    run -0 --separate-stderr "$P/pretrain-val.sh" "$TMP/d/tracks.tsv" "$TMP/val.cmr"
    [ "$(cmr dump "$TMP/val.cmr" | grep -c '^tensor kind=pair ')" -eq 12 ] # 4 tracks x 3
    [ "$(cmr dump "$TMP/val.cmr" | sed -n 's/^tensor kind=pair track="\([^"]*\)" .*/\1/p' | sort -u | tr '\n' ' ')" = \
        "high/t05 high/t06 high/t07 high/t08 " ]
    mkdir "$TMP/snap"
    cmr train -q --width 0.0625 --batch 4 --seed 1 --snapshots "$TMP/snap" --out "$TMP/m.cmr" --log "$TMP/log.tsv" \
        "$TMP/val.cmr"
    run -0 --separate-stderr "$P/pretrain-curve.sh" "$TMP/curve.tsv" "$TMP/log.tsv" "$TMP/val.cmr" "$TMP"/snap/*.cmr
    [ "$(head -n 1 "$TMP/curve.tsv")" = "$(printf 'step\tepoch\ttrain_loss\tval_loss\tval_acc\tchance')" ]
    [ "$(tail -n +2 "$TMP/curve.tsv" | cut -f1,2 | tr '\t\n' ', ')" = "1,0 2,1 3,2 " ]
    tail -n +2 "$TMP/curve.tsv" | awk -F'\t' '!($4 > 0 && $4 < 1e6 && $5 >= 0 && $5 <= 1) { exit 1 }'
    # no held-out tracks: an error, nothing written
    awk -F'\t' -v OFS='\t' 'NR > 1 { $3 = "training" } 1' "$TMP/d/list.tsv" > "$TMP/d/none.tsv"
    run -1 --separate-stderr "$P/pretrain-val.sh" "$TMP/d/none.tsv" "$TMP/none.cmr"
    [[ "$stderr" == *"no held-out tracks"* ]]
    [ ! -e "$TMP/none.cmr" ]
    [ "$(tail -n +2 "$TMP/val.heldout.tsv" | wc -l)" -eq 4 ]
}

@test "pipelines: make index (MFCC) and make similar: the nearest tracks to a file" {
    mk_set "$TMP/d"
    cd "$TMP"
    run -2 --separate-stderr pmake index LIST=d/list.tsv
    [[ "$stderr" == *"index needs LIST=catalogue.tsv and OUT=dir"* ]]
    run -0 --separate-stderr pmake index LIST=d/list.tsv OUT=cat
    [[ "$stderr" == *"tracks    12"* ]]
    [ -s cat/index.cmri ] && [ "$(cat cat/features.txt)" = mfcc ]
    run -0 --separate-stderr pmake index LIST=d/list.tsv OUT=cat
    [[ "$stderr" != *features.sh* ]] # nothing to redo
    # a catalogue track: left out of its own answer; its nearest is of its timbre
    run -0 --separate-stderr pmake --no-print-directory similar INDEX=cat/index.cmri TRACK=d/t1.wav K=3
    [ "${lines[0]}" = "query_track	rank	track	score" ]
    [ "${#lines[@]}" -eq 4 ]
    [[ "${lines[1]}" == "low/t01	1	low/t0"[234]"	"* ]]
    # a file from elsewhere: named by its file name, its nearest the noise tracks
    sox -q -R -n -r 16000 -c 1 -b 16 "$TMP/other.wav" synth 6 pinknoise vol 0.3
    run -0 --separate-stderr pmake --no-print-directory similar INDEX=cat/index.cmri TRACK=other.wav K=2
    [[ "${lines[1]}" == "other.wav	1	noise/t"*"	"* ]]
    run -2 --separate-stderr pmake similar INDEX=cat/index.cmri
    [[ "$stderr" == *"similar needs INDEX=dir/index.cmri and TRACK=audio file"* ]]
}
