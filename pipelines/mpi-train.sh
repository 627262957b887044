#!/bin/bash
# mpi-train.sh LIST OUTDIR STRATEGY LOSS WIDTH EPOCHS SEED
# One rank of data-parallel training (docs/scaling.md), run N times by
#     mpirun -np N pipelines/mpi-train.sh LIST OUTDIR STRATEGY LOSS WIDTH EPOCHS SEED
# (make -C pipelines train NP=N ... does this). Arguments as train.sh's, but
# from the track list itself. Rank R of N:
#   1. decodes its shard of LIST, the tracks i with i % N == R (cmr-decode
#      --shard R/N), into OUTDIR/shards/audio-R-of-N.cmr and computes its mel
#      statistics (kept: a re-run, or a resumed job, reuses them);
#   2. waits for every rank's statistics and merges them (count-weighted mean
#      and variance), so that every rank standardises with those of the whole
#      list, as train.sh does on one machine;
#   3. runs cmr-pair | cmr-augment | cmr-mel | cmr-train --mpi on its shard.
# Rank 0 alone writes OUTDIR/checkpoint.cmr and OUTDIR/train.tsv.part, and
# renames them to model.cmr and train.tsv when training completes. A killed
# job resumes from OUTDIR/checkpoint.cmr when run again, with any number of
# ranks (the shards are then cut anew). OUTDIR must be on a file system every
# rank sees. Env as train.sh's: BATCH (per rank: the global batch is N x
# BATCH), THREADS, AUGMENT, TRAIN_FLAGS; SYNC_BN=1 synchronises batch norm
# over the ranks; STATS_WAIT seconds to wait for the other ranks' statistics
# (86400). The rank and size come from Open MPI (OMPI_COMM_WORLD_RANK, _SIZE),
# PMI or PMIx, or Slurm's srun (SLURM_PROCID, SLURM_NTASKS).
. "$(dirname "$0")/common.sh"
[ $# -eq 7 ] || { echo "usage: mpi-train.sh LIST OUTDIR STRATEGY LOSS WIDTH EPOCHS SEED" >&2; exit 2; }
list=$1 dir=$2 strategy=$3 loss=$4 width=$5 epochs=$6 seed=$7
rank=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${PMI_RANK:-${SLURM_PROCID:-}}}}
size=${OMPI_COMM_WORLD_SIZE:-${PMIX_SIZE:-${PMI_SIZE:-${SLURM_NTASKS:-}}}}
[ -n "$rank" ] && [ -n "$size" ] ||
    { echo "mpi-train.sh: no MPI rank in the environment: run it with mpirun -np N (or srun)" >&2; exit 2; }
case $loss in
    infonce) model=siamese ;;
    multi)   model=multi ;;
    cpc)     model=cpc strategy=sequence ;;
    *) echo "mpi-train.sh: LOSS is infonce, multi or cpc, got '$loss'" >&2; exit 2 ;;
esac
case $strategy in
    self|adjacent|random|sequence) ;;
    *) echo "mpi-train.sh: STRATEGY is self, adjacent or random, got '$strategy'" >&2; exit 2 ;;
esac
need_file "$list"
say() { printf '[mpi-train %d/%d %3ds] %s\n' "$rank" "$size" "$SECONDS" "$*" >&2; }
shards=$dir/shards
tag=$rank-of-$size
audio=$shards/audio-$tag.cmr
mkdir -p "$shards"

# 1. this rank's audio and its mel statistics
if [ ! -s "$audio" ]; then
    say "decoding shard $rank/$size of $list"
    tmp_for "$audio"
    cmr decode -q --shard "$rank/$size" --list "$list" | cmr resample > "$TMP_OUT"
    commit "$audio"
fi
if [ ! -s "${audio%.cmr}.stats" ]; then
    cmr mel --stats "${audio%.cmr}.stats" "$audio" > /dev/null
fi

# 2. every rank's statistics, merged the same way on every rank
waited=0
while [ "$(ls "$shards" | grep -c -- "^audio-[0-9]*-of-$size\.stats$")" -lt "$size" ]; do
    [ "$waited" -lt "${STATS_WAIT:-86400}" ] || die "waited ${waited}s for the other ranks' statistics in $shards"
    sleep 1
    waited=$((waited + 1))
done
stats=$shards/mel-rank$rank.stats
awk '$1 == "count" { c[FILENAME] = $2 } $1 == "mean" { m[FILENAME] = $2 } $1 == "std" { s[FILENAME] = $2 }
     $1 == "config" && !cfg { cfg = $0 }
     END { for (f in c) { n += c[f]; sum += c[f] * m[f] }
           if (n == 0) { print "mpi-train.sh: statistics without counts" > "/dev/stderr"; exit 1 }
           mean = sum / n
           for (f in c) q += c[f] * (s[f] * s[f] + (m[f] - mean) * (m[f] - mean))
           printf "CMRSTATS 1\nkind mel\n%s\ncount %d\nmean %.17g\nstd %.17g\n", cfg, n, mean, sqrt(q / n) }' \
    "$shards"/audio-*-of-"$size".stats > "$stats.tmp.$$"
mv -f "$stats.tmp.$$" "$stats"

# 3. training: rank 0 writes the checkpoint and the log
crop=()
aug=(cmr augment --seed "$seed")
if [ "${AUGMENT:-1}" = 0 ]; then
    [ "$strategy" != self ] || die "STRATEGY=self needs the augmentation (AUGMENT=1)"
    crop=(--crop 3)
    aug=(cat)
fi
flags=()
[ "${SYNC_BN:-0}" = 1 ] && flags+=(--sync-bn)
[ -s "$dir/checkpoint.cmr" ] && flags+=(--resume "$dir/checkpoint.cmr") &&
    { [ "$rank" != 0 ] || say "resuming from $dir/checkpoint.cmr"; }
[ "$rank" = 0 ] && say "training $loss/$strategy width $width, $epochs epochs, seed $seed, $size ranks x batch ${BATCH:-16}"
# cmr-train may stop before its input ends (the job stops at the end of the
# epoch in which one rank's stream ends): the stages before it then get
# SIGPIPE, which is not a failure
set +o pipefail
# shellcheck disable=SC2086
cmr pair -q --strategy "$strategy" --epochs "$epochs" --seed "$seed" "${crop[@]}" "$audio" |
    "${aug[@]}" | cmr mel |
    cmr train --mpi --model "$model" --width "$width" --batch "${BATCH:-16}" --epochs "$epochs" \
        --seed "$seed" --stats "$stats" --threads "${THREADS:-1}" \
        --out "$dir/checkpoint.cmr" --log "$dir/train.tsv.part" "${flags[@]}" ${TRAIN_FLAGS:-}
st=("${PIPESTATUS[@]}")
set -o pipefail
[ "${st[3]}" = 0 ] || exit "${st[3]}"
for s in "${st[@]:0:3}"; do
    [ "$s" = 0 ] || [ "$s" = 141 ] || die "a stage before cmr-train failed (exit statuses ${st[*]})"
done
if [ "$rank" = 0 ]; then
    mv -f "$dir/train.tsv.part" "$dir/train.tsv"
    mv -f "$dir/checkpoint.cmr" "$dir/model.cmr"
    say "wrote $dir/model.cmr"
fi
