# make -C pipelines train NP=N DATA=list.tsv OUT=dir [...]: data-parallel
# training on N MPI ranks (docs/scaling.md), included by the Makefile's train
# target when NP is given. Every rank runs mpi-train.sh: it decodes its shard
# of DATA, merges the ranks' mel statistics and runs the training pipeline
# into cmr-train --mpi; rank 0 writes OUT/model.cmr and OUT/train.tsv.
#   NP            ranks (mpirun -np)
#   MPIRUN        the launcher [mpirun]; MPIRUN_FLAGS more of its options, e.g.
#                 --hostfile hosts.txt, or --oversubscribe on a small machine
#   SYNC_BN=1     batch-norm statistics over every rank's segments
#   BATCH         examples per step per rank (the global batch is NP x BATCH)
# Open MPI's mpirun passes the environment to remote ranks only with -x: the
# variables the scripts read are passed when they are set.
MPIRUN ?= mpirun
MPIRUN_FLAGS ?=
SYNC_BN ?= 0
export SYNC_BN
MPI_ENV := $(foreach v,CMR_BINDIR BATCH THREADS AUGMENT TRAIN_FLAGS SYNC_BN STATS_WAIT,$(if $($(v)),-x $(v)))

$(OUT)/model.cmr: $(DATA) $(OUT)/params.txt
	$(Q)$(MPIRUN) -np $(NP) $(MPI_ENV) $(MPIRUN_FLAGS) $(HERE)/mpi-train.sh $(DATA) $(OUT) \
		$(STRATEGY) $(LOSS) $(WIDTH) $(EPOCHS) $(SEED)
$(OUT)/train.tsv: $(OUT)/model.cmr
	@test -f $@ || { echo "$@ is missing: remove $< and run again" >&2; exit 1; }
$(eval $(call stamp_rule,$(OUT)/params.txt,strategy=$(STRATEGY) loss=$(LOSS) width=$(WIDTH) epochs=$(EPOCHS) seed=$(SEED) batch=$(BATCH) augment=$(AUGMENT) flags=$(TRAIN_FLAGS) np=$(NP) sync_bn=$(SYNC_BN)))
