#!/usr/bin/env bats
# cmr-train --mpi (docs/scaling.md) on one machine: mpirun -np 2 over shared
# memory. The ranks' weights are compared every step; 2 ranks x batch 4 with
# synchronised batch norm train as 1 process x batch 8; killing a rank stops
# the job with a message naming the intact checkpoint, which resumes bit for
# bit on 2 ranks and also on 1; make -C pipelines train NP=2. Tiny models
# (width 0.0625), a few steps each. The tests that launch ranks are skipped
# when mpirun is missing or cmr-train was built without MPI.
load helpers

mkpairs() { "$CMR_BUILDDIR/tests/tools/cmr-mkpairs" "$@"; }
TINY=(--width 0.0625 --seed 1 -q)

setup() {
    setup_tmp
    # Open MPI refuses to run as root unless told
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}

teardown() {
    [ -f "$TMP/sleep.pid" ] && kill "$(cat "$TMP/sleep.pid")" 2>/dev/null
    teardown_tmp
}

need_mpi() {
    command -v mpirun >/dev/null || skip "no mpirun"
    cmr train --help | grep -q 'this build has no MPI' && skip "cmr-train was built without MPI"
    return 0
}

mpi() { mpirun --oversubscribe -np "$@"; }

# the eval line of MODEL on PAIRS (inference-mode loss and accuracy): equal
# lines mean equal weights and running statistics
evalm() { cmr train --eval "$1" --batch 8 "$2" | tail -n 1; }

@test "mpi: option errors exit 2, without launching anything" {
    run -2 --separate-stderr cmr train --out "$TMP/m.cmr" --sync-bn
    [[ "$stderr" == "cmr-train: --sync-bn, --mpi-input and --mpi-check go with --mpi"* ]]
    run -2 --separate-stderr cmr train --out "$TMP/m.cmr" --mpi --mpi-input some
    [[ "$stderr" == "cmr-train: --mpi-input takes shard or all, got 'some'"* ]]
    run -2 --separate-stderr cmr train --out "$TMP/m.cmr" --mpi --mpi-check -1
    [[ "$stderr" == "cmr-train: --mpi-check takes "* ]]
    run -2 --separate-stderr cmr train --mpi --eval "$TMP/m.cmr"
    [[ "$stderr" == "cmr-train: --eval runs in one process: no --mpi"* ]]
    run -0 cmr train --help
    [[ "$output" == *"--mpi "*"--sync-bn"*"--mpi-input MODE"*"--mpi-check N"* ]]
}

@test "mpi: one rank (no launcher) trains exactly as cmr-train without --mpi; its checkpoint needs --mpi to resume" {
    mkpairs --tracks 8 --epochs 2 >"$TMP/p.cmr"
    cmr train "${TINY[@]}" --batch 4 --out "$TMP/a.cmr" --log "$TMP/a.tsv" "$TMP/p.cmr"
    run -0 --separate-stderr cmr train --mpi "${TINY[@]}" --batch 4 --out "$TMP/b.cmr" --log "$TMP/b.tsv" "$TMP/p.cmr"
    [ "$(cut -f 1-5 "$TMP/a.tsv")" = "$(cut -f 1-5 "$TMP/b.tsv")" ]
    [ "$(evalm "$TMP/a.cmr" "$TMP/p.cmr")" = "$(evalm "$TMP/b.cmr" "$TMP/p.cmr")" ]
    run -2 --separate-stderr cmr train "${TINY[@]}" --batch 4 --out "$TMP/b.cmr" --resume "$TMP/b.cmr" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: --resume: $TMP/b.cmr was written by cmr-train --mpi: resume it with --mpi (any number of ranks, 1 included)"* ]]
    run -0 cmr model info "$TMP/b.cmr"
    [[ "$output" == *"train.dist.ranks = 1"* ]]
}

@test "mpi: a build without MPI refuses ranks started by a launcher" {
    cmr train --help | grep -q 'this build has no MPI' || skip "cmr-train has MPI"
    mkpairs --tracks 4 >"$TMP/p.cmr"
    OMPI_COMM_WORLD_SIZE=2 run -2 --separate-stderr cmr train --mpi "${TINY[@]}" --out "$TMP/m.cmr" "$TMP/p.cmr"
    [[ "$stderr" == "cmr-train: --mpi: this cmr-train was built without MPI"*"started 2 ranks"* ]]
}

@test "mpi: 2 ranks on shards of different sizes: weights compared every step, one log, one model" {
    need_mpi
    mkpairs --tracks 12 --epochs 3 --seed 1 >"$TMP/s0.cmr"
    mkpairs --tracks 10 --epochs 3 --seed 2 >"$TMP/s1.cmr"
    cat >"$TMP/rank.sh" <<EOF
#!/bin/sh
exec "$CMR_BINDIR/cmr-train" --mpi --mpi-check 1 ${TINY[*]} --batch 4 --out "$TMP/m.cmr" --log "$TMP/log.tsv" \
    "$TMP/s\$OMPI_COMM_WORLD_RANK.cmr"
EOF
    chmod +x "$TMP/rank.sh"
    run -0 --separate-stderr mpi 2 "$TMP/rank.sh"
    # per epoch: rank 1 has 10 examples, so 2 full steps of 2 x 4, then its
    # last 2 and 2 of rank 0's (which drops its other 2): 3 steps, 20 examples
    [ "$(tail -n +2 "$TMP/log.tsv" | wc -l)" -eq 9 ]
    [ "$(cut -f 2 "$TMP/log.tsv" | tail -n +2 | uniq -c | awk '{print $1}' | tr '\n' ' ')" = "3 3 3 " ]
    run -0 cmr model info "$TMP/m.cmr"
    [[ "$output" == *"training    step 9, epoch 3"* ]]
    [[ "$output" == *"train.dist.ranks = 2"* ]]
    [ -z "$(ls "$TMP" | grep -v -e '^s[01].cmr$' -e '^m.cmr$' -e '^log.tsv$' -e '^rank.sh$')" ]
}

@test "mpi: 2 ranks x batch 4, synchronised batch norm, one stream (--mpi-input all) = 1 process x batch 8" {
    need_mpi
    mkpairs --tracks 16 --epochs 2 >"$TMP/p.cmr"
    # lr 1e-6: Adam turns a gradient within round-off of zero into a step of
    # +-lr whichever its sign (docs/scaling.md), so the two float orders part
    # by up to 2 lr per parameter per step; at the default 1e-3 that moves
    # the loss by 1e-5 relative from step 2 (more or less, with the BLAS
    # kernels), at 1e-6 a thousand times less
    cmr train "${TINY[@]}" --lr 1e-6 --batch 8 --out "$TMP/one.cmr" --log "$TMP/one.tsv" "$TMP/p.cmr"
    run -0 --separate-stderr mpi 2 "$CMR_BINDIR/cmr-train" --mpi --mpi-input all --sync-bn --mpi-check 1 "${TINY[@]}" \
        --lr 1e-6 --batch 4 --out "$TMP/two.cmr" --log "$TMP/two.tsv" "$TMP/p.cmr"
    [ "$(wc -l <"$TMP/two.tsv")" -eq 5 ]
    # the same losses (float reduction order aside: the segments' forward is
    # the same, the batch-norm statistics and the loss are summed in another
    # order, ~1e-7) and learning rates, step by step
    paste "$TMP/one.tsv" "$TMP/two.tsv" | awk -F'\t' 'NR > 1 {
        d = $3 - $10; if (d < 0) d = -d
        if (d > 1e-5 * $3 || $1 != $8 || $2 != $9 || $5 != $12) { print "step " $1 ": " $3 " vs " $10; bad = 1 } }
        END { exit bad }'
    # and the same model: inference-mode loss on the pairs within 1e-4 (the
    # accuracy, an argmax, may flip on a near tie)
    evalm "$TMP/one.cmr" "$TMP/p.cmr" >"$TMP/e1"
    evalm "$TMP/two.cmr" "$TMP/p.cmr" >"$TMP/e2"
    paste "$TMP/e1" "$TMP/e2" | awk '{ d = $3 - $8; if (d < 0) d = -d; exit !(d <= 1e-4 * $3) }'
    # per-rank batch norm is another computation
    run -0 --separate-stderr mpi 2 "$CMR_BINDIR/cmr-train" --mpi --mpi-input all "${TINY[@]}" \
        --batch 4 --out "$TMP/three.cmr" --log "$TMP/three.tsv" "$TMP/p.cmr"
    [ "$(sed -n 2p "$TMP/one.tsv" | cut -f 3)" != "$(sed -n 2p "$TMP/three.tsv" | cut -f 3)" ]
}

@test "mpi: a killed rank stops the job, the checkpoint says so and resumes bit for bit, on 2 ranks and on 1" {
    need_mpi
    mkpairs --tracks 16 --epochs 4 --seed 1 >"$TMP/s0.cmr"
    mkpairs --tracks 12 --epochs 1 --seed 2 >"$TMP/a1.cmr"   # rank 1: epoch 0 ...
    mkpairs --tracks 12 --epochs 4 --seed 2 >"$TMP/s1.cmr"   # ... and its whole stream
    # the uninterrupted run
    cat >"$TMP/rank.sh" <<EOF
#!/bin/sh
exec "$CMR_BINDIR/cmr-train" --mpi ${TINY[*]} --batch 4 --checkpoint-every 2 --out "\$OUT" --log "\$OUT.tsv" "\$@" "$TMP/s\$OMPI_COMM_WORLD_RANK.cmr"
EOF
    chmod +x "$TMP/rank.sh"
    OUT=$TMP/full.cmr run -0 --separate-stderr mpi 2 -x OUT "$TMP/rank.sh"
    # the run that dies: rank 1's input stalls after its first epoch (3 steps:
    # a checkpoint at step 2), then rank 1 is killed
    cat >"$TMP/stall.sh" <<EOF
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then
    { cat "$TMP/a1.cmr"; sleep 60 & echo \$! >"$TMP/sleep.pid"; wait; } |
        sh -c 'echo \$\$ >"$TMP/pid.1"; exec "$CMR_BINDIR/cmr-train" --mpi ${TINY[*]} --batch 4 --checkpoint-every 2 --out "$TMP/ck.cmr" --log "$TMP/ck.tsv"'
else
    exec "$CMR_BINDIR/cmr-train" --mpi ${TINY[*]} --batch 4 --checkpoint-every 2 --out "$TMP/ck.cmr" --log "$TMP/ck.tsv" "$TMP/s0.cmr"
fi
EOF
    chmod +x "$TMP/stall.sh"
    mpi 2 "$TMP/stall.sh" >"$TMP/out" 2>&1 &
    local job=$! i
    for i in $(seq 1 600); do
        [ -s "$TMP/ck.cmr" ] && [ -s "$TMP/pid.1" ] && [ "$(wc -l <"$TMP/ck.tsv")" -ge 4 ] && break
        sleep 0.1
    done
    [ -s "$TMP/ck.cmr" ]
    kill -9 "$(cat "$TMP/pid.1")"
    kill "$(cat "$TMP/sleep.pid")" # the stalled input: its end lets rank 1's process exit
    local rc=0
    wait "$job" || rc=$?
    [ "$rc" -ne 0 ]
    grep -q "cmr-train: stopped by a signal (mpirun stops every rank when one fails); the last checkpoint $TMP/ck.cmr (step 2) is intact: run again with --resume $TMP/ck.cmr, with any number of ranks" "$TMP/out" ||
        { cat "$TMP/out"; false; }
    run -0 cmr model info "$TMP/ck.cmr"
    [[ "$output" == *"training    step 2, epoch 0"* ]]
    cp "$TMP/ck.cmr" "$TMP/ck1.cmr"
    # resumed on 2 ranks: the uninterrupted run's weights, bit for bit
    OUT=$TMP/ck.cmr run -0 --separate-stderr mpi 2 -x OUT "$TMP/rank.sh" --resume "$TMP/ck.cmr"
    run -0 cmr model info "$TMP/ck.cmr"
    [[ "$output" == *"training    step 12, epoch 4"* ]]
    [ "$(evalm "$TMP/ck.cmr" "$TMP/s0.cmr")" = "$(evalm "$TMP/full.cmr" "$TMP/s0.cmr")" ]
    # resumed on 1 rank (batch 8: the same global batch), from the same checkpoint
    run -0 --separate-stderr cmr train --mpi "${TINY[@]}" --batch 8 --out "$TMP/ck1.cmr" --resume "$TMP/ck1.cmr" "$TMP/s0.cmr"
    run -0 cmr model info "$TMP/ck1.cmr"
    [[ "$output" == *"epoch 4"* ]]
    [[ "$output" == *"train.dist.ranks = 1"* ]]
}

@test "mpi: make -C pipelines train NP=2 (a shard of the list per rank, merged mel statistics)" {
    need_mpi
    local d=$TMP/d i
    mkdir -p "$d"
    printf 'path\ttrack\n' >"$d/list.tsv"
    for i in 1 2 3 4 5; do
        sox -q -R -n -r 16000 -c 1 -b 16 "$d/t$i.wav" synth 9 sine $((200 + 90 * i)) tremolo $i 40 vol 0.4
        printf 't%d.wav\ttr%d\n' $i $i >>"$d/list.tsv"
    done
    cd "$TMP"
    run -0 --separate-stderr env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$CMR_SRCDIR/pipelines" train NP=2 \
        DATA=d/list.tsv OUT=run WIDTH=0.0625 EPOCHS=2 BATCH=2 CMR_BINDIR="$CMR_BINDIR" MPIRUN_FLAGS=--oversubscribe
    [ -s run/model.cmr ] && [ -s run/train.tsv ]
    [ "$(tail -n +2 run/train.tsv | wc -l)" -eq 2 ]
    [[ "$stderr" == *"[mpi-train 0/2"*"training infonce/adjacent width 0.0625, 2 epochs, seed 1, 2 ranks x batch 2"* ]]
    # every rank standardised with the statistics of the whole list
    cmp run/shards/mel-rank0.stats run/shards/mel-rank1.stats
    cmr decode -q --list d/list.tsv | cmr resample | cmr mel --stats whole.stats >/dev/null
    [ "$(grep '^count' whole.stats)" = "$(grep '^count' run/shards/mel-rank0.stats)" ]
    awk 'FNR == NR && $1 == "mean" { m = $2 } FNR != NR && $1 == "mean" { d = m - $2; exit !(d < 1e-12 && d > -1e-12) }' \
        whole.stats run/shards/mel-rank0.stats
    run -0 cmr model info run/model.cmr
    [[ "$output" == *"train.dist.ranks = 2"* ]]
    # nothing to redo
    run -0 --separate-stderr env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$CMR_SRCDIR/pipelines" train NP=2 \
        DATA=d/list.tsv OUT=run WIDTH=0.0625 EPOCHS=2 BATCH=2 CMR_BINDIR="$CMR_BINDIR" MPIRUN_FLAGS=--oversubscribe
    [[ "$stderr" != *"mpi-train"* ]]
}

@test "mpi: mpi-train.sh outside a launcher, and with bad arguments" {
    run -2 --separate-stderr "$CMR_SRCDIR/pipelines/mpi-train.sh" a b
    [[ "$stderr" == "usage: mpi-train.sh LIST OUTDIR STRATEGY LOSS WIDTH EPOCHS SEED" ]]
    run -2 --separate-stderr env -u OMPI_COMM_WORLD_RANK -u PMI_RANK -u PMIX_RANK -u SLURM_PROCID \
        "$CMR_SRCDIR/pipelines/mpi-train.sh" l o adjacent infonce 1 1 1
    [[ "$stderr" == "mpi-train.sh: no MPI rank in the environment: run it with mpirun -np N (or srun)" ]]
    OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=1 run -2 --separate-stderr "$CMR_SRCDIR/pipelines/mpi-train.sh" \
        l o adjacent hinge 1 1 1
    [[ "$stderr" == "mpi-train.sh: LOSS is infonce, multi or cpc, got 'hinge'" ]]
}
