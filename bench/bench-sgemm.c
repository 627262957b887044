/* bench-sgemm: the machine's single-precision GEMM peak through cmr_sgemm
 * (cblas_sgemm, row-major), the reference for bench/encoder's GFLOP/s.
 *
 *   bench-sgemm [THREADS] [N]
 *
 * Prints "sgemm NxNxN threads T: X GFLOP/s", the best of 5 runs after one
 * warm-up (N = 2048 by default: large enough for OpenBLAS's best kernel). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/nn.h"
#include "util/clock.h"

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1, n = argc > 2 ? atoi(argv[2]) : 2048;
    if (threads < 1 || n < 16) {
        fprintf(stderr, "usage: bench-sgemm [THREADS] [N]\n");
        return 2;
    }
    cmr_nn_set_threads(threads);
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n),
          *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c)
        return 1;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 17) * 1e-2f;
        b[i] = (float)(i % 13) * 1e-2f;
    }
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t = cmr_now();
        cmr_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        t = cmr_now() - t;
        if (r > 0 && t < best)
            best = t;
    }
    printf("sgemm %dx%dx%d threads %d: %.1f GFLOP/s\n", n, n, n, threads, 2.0 * n * n * n / best / 1e9);
    free(a);
    free(b);
    free(c);
    return 0;
}
