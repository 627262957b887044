#!/usr/bin/env bats
# cmr-train: options, the golden path on synthetic log-mel pairs
# (tests/tools/cmr-mkpairs), learning, determinism, kill -9 and --resume,
# divergence, bad input. Tiny models (width 0.0625) so that it runs in seconds.

load helpers

mkpairs() { "$CMR_BUILDDIR/tests/tools/cmr-mkpairs" "$@"; }
mkframes() { "$CMR_BUILDDIR/tests/tools/cmr-mkframes" "$@"; }
TINY=(--width 0.0625 --batch 4 -q)

setup() {
    setup_tmp
}

teardown() {
    teardown_tmp
}

# the mean loss per epoch of a log: "epoch loss" lines
epoch_means() {
    awk -F'\t' 'NR > 1 {s[$2] += $3; n[$2]++} END {for (e in s) print e, s[e] / n[e]}' "$1" | sort -n
}

@test "train: --help goes to stdout, exit 0" {
    run -0 --separate-stderr cmr train --help
    [[ "$output" == *"Usage: cmr-train"* ]]
    [[ "$output" == *"--resume"* ]]
    [ -z "$stderr" ]
}

@test "train: unknown option and missing --out are usage errors" {
    run -2 --separate-stderr cmr train --bogus --out "$TMP/m.cmr"
    [[ "$stderr" == "cmr-train: unknown option '--bogus'"* ]]
    run -2 --separate-stderr cmr train "$TMP/in.cmr"
    [[ "$stderr" == "cmr-train: --out FILE is required"* ]]
    run -2 --separate-stderr cmr train --out "$TMP/m.cmr" --init a.cmr --resume b.cmr
    [[ "$stderr" == *"--init and --resume exclude each other"* ]]
    run -2 --separate-stderr cmr train --out "$TMP/m.cmr" a b
    [[ "$stderr" == *"at most one input file"* ]]
}

@test "train: bad option values exit 2 naming the option" {
    local bad=("--batch 1" "--batch x" "--width 0" "--width 5" "--temperature 0" "--lr -1" "--lr 1e" \
               "--factor 2" "--factor 0" "--patience -1" "--epochs -1" "--threads 0" "--threads 65" \
               "--checkpoint-every -1" "--context 0" "--predict 17" "--max-loss 0" "--seed -1")
    for b in "${bad[@]}"; do
        set -- $b
        run -2 --separate-stderr cmr train --out "$TMP/m.cmr" "$1" "$2"
        [[ "$stderr" == "cmr-train: $1 takes "* ]] || { echo "$b: $stderr"; false; }
    done
    run -2 --separate-stderr cmr train --out "$TMP/m.cmr" --model lstm
    [[ "$stderr" == "cmr-train: --model takes siamese, multi or cpc, got 'lstm'"* ]]
}

@test "train: golden path: a model file, a log with one row per step, a line per epoch" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    run -0 --separate-stderr cmr train --width 0.0625 --batch 4 --seed 1 --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/p.cmr"
    [ -z "$output" ]
    [[ "$stderr" == *"cmr-train: epoch 0: loss "*"2 steps, 8 examples"* ]]
    [[ "$stderr" == *"cmr-train: epoch 1: loss "* ]]
    [[ "$stderr" == *"wrote $TMP/m.cmr: 4 steps, 2 epochs, lr 0.001"* ]]
    [ "$(head -n1 "$TMP/log.tsv")" = "$(printf 'step\tepoch\tloss\tacc\tlr\tseg_per_s\telapsed_s')" ]
    [ "$(wc -l < "$TMP/log.tsv")" -eq 5 ]
    awk -F'\t' 'NR > 1 && !($3 > 0 && $3 < 1e4 && $4 >= 0 && $4 <= 1 && $5 == 0.001 && $6 > 0) {exit 1}' "$TMP/log.tsv"
    [ "$(cut -f1,2 "$TMP/log.tsv" | tail -n +2 | tr '\t\n' ' ')" = "1 0 2 0 3 1 4 1 " ]
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"kind        encoder"* ]]
    [[ "$output" == *"step 4, epoch 2"* ]]
    [[ "$output" == *"state saved"* ]]
    [[ "$output" == *"train.consumed = 16"* ]]
}

@test "train: stdin works, -q is silent, stdout stays empty" {
    mkpairs --tracks 4 > "$TMP/p.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" < "$TMP/p.cmr"
    [ -z "$output" ]
    [ -z "$stderr" ]
    [ -s "$TMP/m.cmr" ]
}

@test "train: the loss falls and the accuracy rises over epochs (siamese)" {
    mkpairs --tracks 16 --epochs 8 > "$TMP/p.cmr"
    run -0 cmr train --width 0.0625 --batch 8 -q --seed 2 --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/p.cmr"
    epoch_means "$TMP/log.tsv"
    first=$(epoch_means "$TMP/log.tsv" | head -n1 | cut -d' ' -f2)
    last=$(epoch_means "$TMP/log.tsv" | tail -n1 | cut -d' ' -f2)
    awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < 0.6 * a)}'
    acc=$(awk -F'\t' 'NR > 1 && $2 == 7 {s += $4; n++} END {print s / n}' "$TMP/log.tsv")
    awk -v a="$acc" 'BEGIN {exit !(a > 0.4)}'   # chance 1/8
}

@test "train: multi and cpc train; cpc reads sequence frames of context + K rows" {
    mkpairs --tracks 4 > "$TMP/p.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --model multi --out "$TMP/multi.cmr" --log "$TMP/multi.tsv" "$TMP/p.cmr"
    run -0 cmr model info "$TMP/multi.cmr"
    [[ "$output" == *"kind        multi"* ]]
    mkpairs --tracks 4 --kind sequence --rows 6 > "$TMP/s.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --model cpc --out "$TMP/cpc.cmr" --log "$TMP/cpc.tsv" "$TMP/s.cmr"
    run -0 cmr model info "$TMP/cpc.cmr"
    [[ "$output" == *"kind        cpc"* ]]
    [ "$(wc -l < "$TMP/cpc.tsv")" -eq 2 ]
    mkpairs --tracks 4 --kind sequence --rows 4 > "$TMP/s4.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --model cpc --context 3 --predict 1 --out "$TMP/cpc3.cmr" "$TMP/s4.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --model cpc --out "$TMP/x.cmr" "$TMP/s4.cmr"
    [[ "$stderr" == *"sequence frame has shape [4, 188, 96], expected [6, 188, 96]"*"--context and --predict"* ]]
    [ ! -e "$TMP/x.cmr" ]
}

@test "train: the same seed gives the same file, another seed another one" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    cmr train "${TINY[@]}" --seed 7 --out "$TMP/a.cmr" "$TMP/p.cmr"
    cmr train "${TINY[@]}" --seed 7 --out "$TMP/b.cmr" "$TMP/p.cmr"
    cmr train "${TINY[@]}" --seed 8 --out "$TMP/c.cmr" "$TMP/p.cmr"
    cmp "$TMP/a.cmr" "$TMP/b.cmr"
    ! cmp -s "$TMP/a.cmr" "$TMP/c.cmr"
}

@test "train: kill -9 mid-run, --resume reproduces the uninterrupted run bit for bit" {
    mkpairs --tracks 16 --epochs 6 > "$TMP/p.cmr"
    local opts=("${TINY[@]}" --seed 3 --checkpoint-every 5)
    cmr train "${opts[@]}" --out "$TMP/full.cmr" --log "$TMP/full.tsv" "$TMP/p.cmr"
    # the binary itself in the background (not the cmr function, whose subshell kill -9 would leave it running)
    "$CMR_BINDIR/cmr-train" "${opts[@]}" --out "$TMP/c.cmr" --log "$TMP/c.tsv" "$TMP/p.cmr" &
    local pid=$! i=0
    while [ ! -e "$TMP/c.cmr" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.2
    kill -9 $pid 2>/dev/null || true
    wait $pid || true
    [ -s "$TMP/c.cmr" ]
    run -0 --separate-stderr cmr train "${opts[@]}" -v --out "$TMP/c.cmr" --log "$TMP/c.tsv" --resume "$TMP/c.cmr" "$TMP/p.cmr"
    echo "$stderr"
    cmp "$TMP/full.cmr" "$TMP/c.cmr"
    # the log: rows written after the last checkpoint were redone, not duplicated
    diff <(cut -f1-5 "$TMP/full.tsv") <(cut -f1-5 "$TMP/c.tsv")
}

@test "train: --resume of a finished run changes nothing" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    cmr train "${TINY[@]}" --out "$TMP/a.cmr" "$TMP/p.cmr"
    cp "$TMP/a.cmr" "$TMP/b.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --resume "$TMP/b.cmr" --out "$TMP/b.cmr" "$TMP/p.cmr"
    cmp "$TMP/a.cmr" "$TMP/b.cmr"
}

@test "train: --resume refuses other options and a shorter stream" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    cmr train "${TINY[@]}" --out "$TMP/a.cmr" "$TMP/p.cmr"
    run -2 --separate-stderr cmr train --width 0.0625 --batch 8 --resume "$TMP/a.cmr" --out "$TMP/b.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"trained with batch 4, not 8"* ]]
    run -2 --separate-stderr cmr train "${TINY[@]}" --model multi --resume "$TMP/a.cmr" --out "$TMP/b.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"is a encoder model"* ]]
    run -2 --separate-stderr cmr train --width 0.25 --batch 4 --resume "$TMP/a.cmr" --out "$TMP/b.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"has width 0.0625"* ]]
    mkpairs --tracks 8 --epochs 1 > "$TMP/short.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --resume "$TMP/a.cmr" --out "$TMP/b.cmr" "$TMP/short.cmr"
    [[ "$stderr" == *"the input ended after 8 examples, but $TMP/a.cmr was trained on 16"* ]]
    run -1 --separate-stderr cmr train "${TINY[@]}" --resume "$TMP/nonexistent.cmr" --out "$TMP/b.cmr" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: "*"nonexistent.cmr"* ]]
}

@test "train: an exploding loss stops with exit 1 and leaves the checkpoint intact" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    mkpairs --tracks 8 --epochs 3 > "$TMP/p3.cmr"
    cmr train "${TINY[@]}" --out "$TMP/a.cmr" "$TMP/p.cmr"
    cp "$TMP/a.cmr" "$TMP/keep.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --max-loss 1e-6 --resume "$TMP/a.cmr" --out "$TMP/a.cmr" "$TMP/p3.cmr"
    [[ "$stderr" == "cmr-train: train: step 5: loss "*" is above 1e-06 (exploding); stopped, the last checkpoint $TMP/a.cmr (step 4) is intact" ]]
    cmp "$TMP/a.cmr" "$TMP/keep.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --max-loss 1e-6 --out "$TMP/new.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"(exploding); stopped, no checkpoint was written" ]]
    [ ! -e "$TMP/new.cmr" ]
}

@test "train: NaN in the input exits 1 naming the track; earlier checkpoints stay" {
    mkpairs --tracks 8 --epochs 2 --nan 1,3 > "$TMP/p.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --checkpoint-every 1 --out "$TMP/m.cmr" "$TMP/p.cmr"
    [[ "$stderr" == 'cmr-train: track "t03.wav": pair frame holds NaN (row 1, frame 0, bin 5)'* ]]
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"step 3, epoch 1"* ]]      # t03 comes 5th in epoch 1's order
}

@test "train: --epochs stops after N epochs of a longer stream" {
    mkpairs --tracks 8 --epochs 3 > "$TMP/p.cmr"
    run -0 --separate-stderr cmr train "${TINY[@]}" --epochs 1 --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/p.cmr"
    [ "$(cut -f2 "$TMP/log.tsv" | tail -n +2 | sort -u)" = 0 ]
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"step 2, epoch 1"* ]]
}

@test "train: a short last batch of an epoch: >= 2 examples train, 1 is dropped" {
    mkpairs --tracks 6 --epochs 1 > "$TMP/p6.cmr"
    run -0 --separate-stderr cmr train --width 0.0625 --batch 4 --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/p6.cmr"
    [ "$(wc -l < "$TMP/log.tsv")" -eq 3 ]     # 4 + 2
    mkpairs --tracks 5 --epochs 2 > "$TMP/p5.cmr"
    run -0 --separate-stderr cmr train --width 0.0625 --batch 4 -v --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/p5.cmr"
    [ "$(wc -l < "$TMP/log.tsv")" -eq 3 ]     # 4 (+1 dropped) per epoch
    [[ "$stderr" == *"epoch 0: dropped a last batch of 1 example"* ]]
    [[ "$stderr" == *"epoch 1: loss"*"1 steps, 4 examples"* ]]
}

@test "train: --stats stores the standardisation in the model; already standardised input is refused" {
    mkpairs --tracks 4 > "$TMP/p.cmr"
    printf 'CMRSTATS 1\nkind mel\nmean 0.25\nstd 0.5\n' > "$TMP/s.stats"
    run -0 --separate-stderr cmr train "${TINY[@]}" --stats "$TMP/s.stats" --out "$TMP/m.cmr" "$TMP/p.cmr"
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"standardisation (x - 0.25) / 0.5"* ]]
    printf 'CMRSTATS 1\nkind mfcc\nmean 0.25\nstd 0.5\n' > "$TMP/bad.stats"
    run -1 --separate-stderr cmr train "${TINY[@]}" --stats "$TMP/bad.stats" --out "$TMP/m.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *'holds statistics of "mfcc" frames, not "mel"'* ]]
    run -1 --separate-stderr cmr train "${TINY[@]}" --stats "$TMP/none.stats" --out "$TMP/m.cmr" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: --stats: "* ]]
    printf 'CMRSTATS 1\nkind mel\nmean 0.3\nstd 0.5\n' > "$TMP/other.stats"
    run -2 --separate-stderr cmr train "${TINY[@]}" --stats "$TMP/other.stats" --resume "$TMP/m.cmr" --out "$TMP/m2.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"differs from the checkpoint's standardisation"* ]]
}

@test "train: --init starts from a model's weights with a fresh optimizer" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    cmr model init -q --kind encoder --width 0.0625 --seed 4 --mel-mean 0.1 --mel-std 0.2 "$TMP/init.cmr"
    run -0 --separate-stderr cmr train --batch 4 -q --init "$TMP/init.cmr" --out "$TMP/a.cmr" "$TMP/p.cmr"
    run -0 cmr model info "$TMP/a.cmr"
    [[ "$output" == *"step 4, epoch 2"* ]]
    [[ "$output" == *"standardisation (x - 0.1) / 0.2"* ]]
    # from a trained model: the step count starts again
    run -0 --separate-stderr cmr train --batch 4 -q --init "$TMP/a.cmr" --out "$TMP/b.cmr" "$TMP/p.cmr"
    run -0 cmr model info "$TMP/b.cmr"
    [[ "$output" == *"step 4, epoch 2"* ]]
    run -2 --separate-stderr cmr train --batch 4 --model cpc --init "$TMP/init.cmr" --out "$TMP/c.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"is a encoder model"* ]]
}

@test "train: the trained model encodes segments (cmr-encode)" {
    mkpairs --tracks 4 > "$TMP/p.cmr"
    cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/p.cmr"
    "$CMR_BUILDDIR/tests/unit/mk-segments" --tracks 2 --segments 2 > "$TMP/seg.cmr" || skip "mk-segments not built"
    run -0 --separate-stderr bash -c "'$CMR_BINDIR/cmr-encode' --model '$TMP/m.cmr' '$TMP/seg.cmr' | '$CMR_BINDIR/cmr-dump'"
    [[ "$output" == *"embedding"* ]]
}

@test "train: wrong kind, wrong shape, truncated stream and empty input exit 1" {
    mkframes --kind mel --rows 10 > "$TMP/mel.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/mel.cmr"
    [[ "$stderr" == "cmr-train: "*'"pair"'* ]]
    mkpairs --tracks 2 --rows 3 > "$TMP/p3.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/p3.cmr"
    [[ "$stderr" == *"pair frame has shape [3, 188, 96], expected [2, 188, 96]"* ]]
    mkpairs --tracks 4 > "$TMP/p.cmr"
    head -c 100000 "$TMP/p.cmr" > "$TMP/trunc.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/trunc.cmr"
    [[ "$stderr" == "cmr-train: "* ]]
    mkframes --tracks 0 > "$TMP/empty.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/empty.cmr"
    [[ "$stderr" == 'cmr-train: no "pair" frames in the input: nothing to train on'* ]]
    : > "$TMP/nothing.cmr"
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/nothing.cmr"
    [[ "$stderr" == "cmr-train: "*"no header"* ]]
    [ ! -e "$TMP/m.cmr" ]
    run -1 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/no/such/dir/m.cmr" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: "* ]]
}

@test "train: the real pipeline: cmr-pair | cmr-mel | cmr-train" {
    mk_music "$TMP/a.wav" 8
    mk_sine "$TMP/b.wav" 440 8
    mk_noise "$TMP/c.wav" 8
    { echo path; printf '%s\n' "$TMP/a.wav" "$TMP/b.wav" "$TMP/c.wav"; } > "$TMP/list.tsv"
    cmr decode --list "$TMP/list.tsv" | cmr resample > "$TMP/audio.cmr" 2>/dev/null || skip "no decode --list"
    cmr pair -q --strategy adjacent --crop 3 --epochs 2 --seed 1 "$TMP/audio.cmr" > "$TMP/pairs.cmr"
    if ! cmr mel < "$TMP/pairs.cmr" > "$TMP/mel.cmr" 2>/dev/null; then
        skip "cmr-mel does not take pair frames yet"
    fi
    run -0 --separate-stderr cmr train "${TINY[@]}" --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/mel.cmr"
    [ "$(wc -l < "$TMP/log.tsv")" -eq 3 ]
}

@test "train: --eval prints loss and accuracy in inference mode and changes nothing" {
    mkpairs --tracks 8 --epochs 2 > "$TMP/p.cmr"
    cmr train "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/p.cmr"
    cp "$TMP/m.cmr" "$TMP/keep.cmr"
    run -0 --separate-stderr cmr train --eval "$TMP/m.cmr" --batch 4 "$TMP/p.cmr"
    [ "${lines[0]}" = "$(printf 'examples\tbatches\tloss\tacc\tchance')" ]
    [[ "${lines[1]}" == "$(printf '16\t4\t')"* ]]
    [ "$(echo "${lines[1]}" | cut -f5)" = 0.25 ]
    cmp "$TMP/m.cmr" "$TMP/keep.cmr"
    run -0 --separate-stderr cmr train --eval "$TMP/m.cmr" --batch 4 --epochs 1 "$TMP/p.cmr"
    [[ "${lines[1]}" == "$(printf '8\t2\t')"* ]]
    run -2 --separate-stderr cmr train --eval "$TMP/m.cmr" --out "$TMP/x.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"--eval takes no --out"* ]]
    mkpairs --tracks 1 > "$TMP/one.cmr"
    run -1 --separate-stderr cmr train --eval "$TMP/m.cmr" "$TMP/one.cmr"
    [[ "$stderr" == *"no batch of >= 2 examples"* ]]
}

@test "train: --snapshots keeps the checkpoint of every (N-th) epoch; the last one is --out" {
    mkpairs --tracks 8 --epochs 4 > "$TMP/p.cmr"
    mkdir "$TMP/snap" "$TMP/snap2"
    run -0 --separate-stderr cmr train "${TINY[@]}" --seed 1 --snapshots "$TMP/snap" --out "$TMP/m.cmr" "$TMP/p.cmr"
    [ "$(ls "$TMP/snap")" = "$(printf 'epoch-0000.cmr\nepoch-0001.cmr\nepoch-0002.cmr\nepoch-0003.cmr')" ]
    cmp "$TMP/snap/epoch-0003.cmr" "$TMP/m.cmr"
    run -0 cmr model info "$TMP/snap/epoch-0001.cmr"
    [[ "$output" == *"step 4, epoch 2"* ]]
    # the same run without snapshots gives the same model: a snapshot changes nothing
    cmr train "${TINY[@]}" --seed 1 --out "$TMP/plain.cmr" "$TMP/p.cmr"
    cmp "$TMP/plain.cmr" "$TMP/m.cmr"
    cmr train "${TINY[@]}" --seed 1 --snapshots "$TMP/snap2" --snapshot-every 3 --out "$TMP/m2.cmr" "$TMP/p.cmr"
    [ "$(ls "$TMP/snap2")" = epoch-0002.cmr ]
    run -0 --separate-stderr cmr train --eval "$TMP/snap/epoch-0000.cmr" --batch 4 "$TMP/p.cmr"
    [[ "${lines[1]}" == "$(printf '32\t8\t')"* ]]
    run -1 --separate-stderr cmr train "${TINY[@]}" --snapshots "$TMP/none" --out "$TMP/x.cmr" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: --snapshots $TMP/none: No such file or directory" ]]
    [ ! -e "$TMP/x.cmr" ]
    run -1 --separate-stderr cmr train "${TINY[@]}" --snapshots "$TMP/p.cmr" --out "$TMP/x.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"not a writable directory"* ]]
    run -2 --separate-stderr cmr train "${TINY[@]}" --snapshot-every 2 --out "$TMP/x.cmr" "$TMP/p.cmr"
    [[ "$stderr" == *"--snapshot-every goes with --snapshots DIR"* ]]
    run -2 --separate-stderr cmr train --eval "$TMP/m.cmr" --snapshots "$TMP/snap" "$TMP/p.cmr"
    [[ "$stderr" == *"--eval writes nothing: no --snapshots"* ]]
}

@test "train: the first steps' losses match PyTorch's from the same weights (tests/ref/train-torch-steps.tsv)" {
    local ref="$CMR_SRCDIR/tests/ref/train-torch-steps.tsv"
    for spec in "siamese pair 2" "multi pair 2" "cpc sequence 3"; do
        set -- $spec
        mkpairs --tracks 8 --seed 1 --kind "$2" --rows "$3" > "$TMP/s.cmr"
        cmr train -q --model "$1" --width 0.0625 --batch 4 --seed 1 --context 2 --predict 1 \
            --out "$TMP/m.cmr" --log "$TMP/log.tsv" "$TMP/s.cmr"
        # relative difference below 5e-4 (float32 sums in another order; measured <= 7e-5)
        awk -F'\t' -v m="$1" 'NR == FNR {if ($1 == m) want[$2] = $3; next}
            FNR > 1 {d = $3 - want[$1]; if (d < 0) d = -d; printf "%s step %d: cmr %s torch %s\n", m, $1, $3, want[$1];
                     if (!($1 in want) || d > 5e-4 * want[$1]) bad = 1; n++}
            END {exit bad || n != 2}' "$ref" "$TMP/log.tsv"
    done
}
