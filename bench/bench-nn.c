/* bench-nn: single-call timings of cmr's NN kernels against the machine's
 * cblas_sgemm peak. Usage: bench-nn [threads] [batch] [reps] [algo] [width]
 * Prints GFLOP/s for a square sgemm (the peak), then conv2d forward and
 * backward of the encoder blocks (PAPER.md section 4; channels scaled by
 * width as cmr_models.py: round(c * width), at least 1) and the rest of each
 * block (batch norm, relu, max-pool), forward and backward.
 * algo: 0 auto, 1 im2col, 2 winograd (where it fits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nn/nn.h"
#include "util/rng.h"

/* With one thread the clock is the process's CPU time, so that other jobs on
 * a shared machine (time slicing) do not count; with more, wall time. */
static clockid_t clk = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(clk, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static float *randbuf(struct cmr_rng *r, size_t n)
{
    float *p = malloc(n * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench-nn: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)cmr_rng_normal(r);
    return p;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int B = argc > 2 ? atoi(argv[2]) : 1;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    int algo = argc > 4 ? atoi(argv[4]) : CMR_CONV2D_AUTO;   /* 0 auto, 1 im2col, 2 winograd */
    double width = argc > 5 ? atof(argv[5]) : 1.0;
    struct cmr_rng r;
    cmr_rng_seed(&r, 1);
    cmr_nn_set_threads(threads);
    if (threads == 1)
        clk = CLOCK_PROCESS_CPUTIME_ID;
    printf("threads %d (OpenBLAS reports %d), batch %d, width %g, best of %d, %s\n", threads,
           cmr_nn_get_threads(), B, width, reps, threads == 1 ? "CPU time" : "wall time");

    int n = 2048;
    float *A = randbuf(&r, (size_t)n * n), *Bm = randbuf(&r, (size_t)n * n),
          *C = randbuf(&r, (size_t)n * n);
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t = now();
        cmr_sgemm(0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
        t = now() - t;
        best = t < best ? t : best;
    }
    double peak = 2.0 * n * n * n / best / 1e9;
    printf("sgemm %dx%dx%d: %.1f GFLOP/s (peak reference)\n", n, n, n, peak);
    free(A);
    free(Bm);
    free(C);

    double tot_f = 0, tot_b = 0, tot_flop = 0, tot_bflop = 0;
    static const int paper[6] = {1, 128, 256, 256, 512, 512};
    int ch[6] = {1};
    for (int l = 1; l < 6; l++) {
        ch[l] = (int)nearbyint(paper[l] * width);   /* half to even, as Python's round */
        if (ch[l] < 1)
            ch[l] = 1;
    }
    static const int hh[5] = {188, 94, 47, 23, 5}, ww[5] = {96, 48, 24, 12, 3};
    for (int blk = 0; blk < 5; blk++) {
        struct cmr_conv2d_dims d = {B, ch[blk], hh[blk], ww[blk], ch[blk + 1], 5, 5, 2, 2};
        size_t ni = (size_t)B * d.C * d.H * d.W, no = (size_t)B * d.OC * d.H * d.W,
               nw = (size_t)d.OC * d.C * 25;
        float *x = randbuf(&r, ni), *w = randbuf(&r, nw), *bias = randbuf(&r, d.OC),
              *y = randbuf(&r, no), *s = randbuf(&r, cmr_conv2d_scratch_floats(&d)),
              *dx = randbuf(&r, ni), *dw = randbuf(&r, nw), *db = randbuf(&r, d.OC);
        double flop = 2.0 * no * d.C * 25, tf = 1e30, tb = 1e30;
        for (int i = 0; i < reps; i++) {
            double t = now();
            cmr_conv2d_forward_algo(y, s, x, w, bias, &d, algo);
            t = now() - t;
            tf = t < tf ? t : tf;
            t = now();
            cmr_conv2d_backward_algo(blk ? dx : NULL, dw, db, s, y, x, w, &d, algo);
            t = now() - t;
            tb = t < tb ? t : tb;
        }
        /* the rest of the block: bn (train), relu in place, maxpool; and their backward */
        static const int pk[5][2] = {{2, 2}, {2, 2}, {2, 2}, {4, 4}, {5, 3}};
        struct cmr_pool2d_dims pd = {B, d.OC, d.H, d.W, pk[blk][0], pk[blk][1]};
        size_t np = (size_t)B * d.OC * cmr_pool2d_oh(&pd) * cmr_pool2d_ow(&pd);
        float *a = randbuf(&r, no), *g = randbuf(&r, d.OC), *be = randbuf(&r, d.OC),
              *mean = randbuf(&r, d.OC), *rstd = randbuf(&r, d.OC), *rm = randbuf(&r, d.OC),
              *rv = randbuf(&r, d.OC), *p = randbuf(&r, np), *da = randbuf(&r, no),
              *dc = randbuf(&r, no), *dg = randbuf(&r, d.OC), *dbe = randbuf(&r, d.OC);
        int32_t *am = malloc(np * sizeof *am);
        double te = 1e30, tbe = 1e30;
        for (int i = 0; i < reps; i++) {
            double t = now();
            cmr_batchnorm2d_forward_train(a, mean, rstd, rm, rv, y, g, be, B, d.OC, d.H * d.W,
                                          CMR_BN_MOMENTUM, CMR_BN_EPS);
            cmr_relu_forward(a, a, no);
            cmr_maxpool2d_forward(p, am, a, &pd);
            t = now() - t;
            te = t < te ? t : te;
            t = now();
            cmr_maxpool2d_backward(da, p, am, &pd);
            cmr_relu_backward(dc, da, a, no);
            cmr_batchnorm2d_backward(da, dg, dbe, dc, y, g, mean, rstd, B, d.OC, d.H * d.W);
            t = now() - t;
            tbe = t < tbe ? t : tbe;
        }
        free(a); free(g); free(be); free(mean); free(rstd); free(rm); free(rv); free(p);
        free(da); free(dc); free(dg); free(dbe); free(am);
        tot_f += tf + te;
        tot_b += tb + tbe;
        tot_flop += flop;
        tot_bflop += blk ? 2 * flop : flop;
        double fb = blk ? 2 * flop : flop;
        static const char *an[3] = {"auto", "im2col", "winograd"};
        int used = algo ? algo : cmr_conv2d_algo(&d);
        if (used == CMR_CONV2D_WINOGRAD && (d.KH != 5 || d.PH != 2))
            used = CMR_CONV2D_IM2COL;
        printf("conv block %d (%s) %3d->%3d %3dx%2d: fwd %7.2f ms %6.1f GFLOP/s (%3.0f%% of peak)"
               "  bwd %7.2f ms %6.1f GFLOP/s (%3.0f%%)\n",
               blk + 1, an[used], d.C, d.OC, d.H, d.W, tf * 1e3, flop / tf / 1e9, 100 * flop / tf / 1e9 / peak,
               tb * 1e3, fb / tb / 1e9, 100 * fb / tb / 1e9 / peak);
        printf("      bn+relu+pool: fwd %7.2f ms, bwd %7.2f ms\n", te * 1e3, tbe * 1e3);
        free(x); free(w); free(bias); free(y); free(s); free(dx); free(dw); free(db);
    }
    printf("five blocks (conv+bn+relu+pool), per segment: forward %.1f ms = %.1f GFLOP/s (%.0f%% of peak),"
           " backward %.1f ms = %.1f GFLOP/s (%.0f%%)\n", tot_f * 1e3 / B, tot_flop / tot_f / 1e9,
           100 * tot_flop / tot_f / 1e9 / peak, tot_b * 1e3 / B, tot_bflop / tot_b / 1e9,
           100 * tot_bflop / tot_b / 1e9 / peak);
    return 0;
}
