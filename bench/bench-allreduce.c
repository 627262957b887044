/* bench-allreduce: MPI_Allreduce (sum of floats, in place) time per call and
 * bus bandwidth by message size, on MPI_COMM_WORLD; what one training step of
 * cmr-train --mpi pays for its gradients (bench/scale, docs/scaling.md).
 *
 *   mpirun -np N bench/bench-allreduce [MAX_FLOATS] [SECONDS_PER_SIZE]
 *
 * Sizes: powers of 4 from 1 float up to MAX_FLOATS (default 12.36M, the
 * paper-width encoder's parameters), then MAX_FLOATS itself. Rank 0 prints
 * one TSV row per size: floats, bytes, calls, the median time per call (us),
 * and the bus bandwidth 2 (N-1)/N x bytes / time (GB/s), the bytes a ring
 * all-reduce moves through each rank's link (nccl-tests' busbw). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long max = argc > 1 ? atol(argv[1]) : 12360000;
    double secs = argc > 2 ? atof(argv[2]) : 0.5;
    if (max < 1 || !(secs > 0)) {
        if (rank == 0)
            fprintf(stderr, "usage: bench-allreduce [MAX_FLOATS] [SECONDS_PER_SIZE]\n");
        MPI_Finalize();
        return 2;
    }
    float *buf = malloc((size_t)max * sizeof *buf);
    double *times = malloc(10000 * sizeof *times);
    if (!buf || !times)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < max; i++)
        buf[i] = 1e-3f * (float)(i % 1000);
    if (rank == 0)
        printf("floats\tbytes\tcalls\tus_per_call\tbusbw_GBps\n");
    for (long n = 1;; n = n * 4 > max && n < max ? max : n * 4) {
        if (n > max)
            break;
        /* warm up, then calls until secs have passed (rank 0 decides) */
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        int calls = 0, more = 1;
        double start = MPI_Wtime();
        while (more && calls < 10000) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            times[calls++] = MPI_Wtime() - t0;
            more = MPI_Wtime() - start < secs || calls < 3;
            MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD);
        }
        /* the slowest rank's time per call */
        MPI_Allreduce(MPI_IN_PLACE, times, calls, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        qsort(times, (size_t)calls, sizeof *times, cmp_double);
        double t = times[calls / 2], bytes = 4.0 * n;
        if (rank == 0)
            printf("%ld\t%.0f\t%d\t%.2f\t%.3f\n", n, bytes, calls, t * 1e6,
                   size > 1 ? 2.0 * (size - 1) / size * bytes / t / 1e9 : 0.0);
        if (n == max)
            break;
    }
    free(buf);
    free(times);
    MPI_Finalize();
    return 0;
}
