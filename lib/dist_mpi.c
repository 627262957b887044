/* cmr data-parallel training over MPI (dist.h): the three collectives on
 * MPI_COMM_WORLD. Compiled only into the programs that take --mpi, and only
 * when configure found Open MPI (HAVE_MPI): libcmr itself never links MPI.
 * ref: https://www.open-mpi.org/doc/v4.1/man3/MPI_Allreduce.3.php */
#include "config.h"

#include <limits.h>

#include <mpi.h>

#include "dist.h"

/* MPI counts are ints: larger buffers go in pieces */
#define CHUNK ((size_t)1 << 28)

static MPI_Datatype mpi_type(enum cmr_dist_type t)
{
    return t == CMR_DIST_F32 ? MPI_FLOAT : t == CMR_DIST_F64 ? MPI_DOUBLE : MPI_INT64_T;
}

static size_t type_size(enum cmr_dist_type t)
{
    return t == CMR_DIST_F32 ? sizeof(float) : t == CMR_DIST_F64 ? sizeof(double) : sizeof(int64_t);
}

static int mpi_allreduce(struct cmr_dist *d, void *buf, size_t n, enum cmr_dist_type type, enum cmr_dist_op op)
{
    (void)d;
    MPI_Op o = op == CMR_DIST_SUM ? MPI_SUM : op == CMR_DIST_MIN ? MPI_MIN : MPI_MAX;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * type_size(type), (int)k, mpi_type(type), o,
                          MPI_COMM_WORLD) != MPI_SUCCESS)
            return CMR_EIO;
    }
    return CMR_OK;
}

static int mpi_allgather(struct cmr_dist *d, const void *send, void *recv, size_t n, enum cmr_dist_type type)
{
    if (n * (size_t)d->size > INT_MAX)
        return CMR_ETOOBIG;
    return MPI_Allgather(send, (int)n, mpi_type(type), recv, (int)n, mpi_type(type), MPI_COMM_WORLD) == MPI_SUCCESS
               ? CMR_OK : CMR_EIO;
}

static int mpi_bcast(struct cmr_dist *d, void *buf, size_t bytes, int root)
{
    (void)d;
    for (size_t i = 0; i < bytes; i += CHUNK) {
        size_t k = bytes - i < CHUNK ? bytes - i : CHUNK;
        if (MPI_Bcast((char *)buf + i, (int)k, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS)
            return CMR_EIO;
    }
    return CMR_OK;
}

static const struct cmr_dist_ops mpi_ops = {mpi_allreduce, mpi_allgather, mpi_bcast};

struct cmr_dist *cmr_dist_mpi_new(int *argc, char ***argv, const struct cmr_dist_cfg *cfg,
                                  struct cmr_error *err)
{
    int rank = 0, size = 1;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        cmr_error_set(err, CMR_EIO, "dist: MPI_Init failed");
        return NULL;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return cmr_dist_new(rank, size, &mpi_ops, NULL, cfg, err);
}

void cmr_dist_mpi_finalize(struct cmr_dist *d)
{
    cmr_dist_free(d);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}
