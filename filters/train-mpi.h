/* The command-line side of cmr-train --mpi (docs/scaling.md): starting the
 * group, messages that name the rank, the launcher's stop signal, the
 * summary. The training itself is lib/dist.h's. */
#ifndef CMR_TRAIN_MPI_H
#define CMR_TRAIN_MPI_H

#include <stdint.h>

#include "dist.h"

/* 1 when this cmr-train links MPI (configure found Open MPI) */
int train_mpi_built(void);

/* Starts the group: MPI_Init and a rank of MPI_COMM_WORLD, or, in a build
 * without MPI, a group of one (a usage error when the launcher's environment
 * says more ranks were started). Ranks other than 0 prefix their messages
 * with "rank N" and are quiet (-q); every rank that is stopped by a signal
 * (mpirun's SIGTERM after another rank failed, or Ctrl-C) says, on rank 0,
 * which checkpoint is intact. Exits on failure; from MPI_Init on, until
 * train_mpi_finish, a non-zero exit calls MPI_Abort (one failing rank stops
 * the job). */
struct cmr_dist *train_mpi_start(int *argc, char ***argv, const struct cmr_dist_cfg *cfg);

/* remembers the last checkpoint written, for the stop message */
void train_mpi_checkpoint(const char *path, int64_t step);

/* -v: the communication summary (rank 0); then MPI_Finalize */
void train_mpi_finish(struct cmr_dist *d);

#endif
