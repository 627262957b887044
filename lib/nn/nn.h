/* cmr neural-network kernels, in the style of karpathy/llm.c.
 *
 * Every layer is a pair of free functions, forward and backward, over
 * caller-owned float buffers. Nothing here allocates, prints, exits or keeps
 * state between calls; every function is reentrant (two threads may run
 * kernels on disjoint buffers; the GEMMs inside use OpenBLAS's own threads,
 * and cmr_gemm_fixed none).
 *
 * Conventions (stated once, they hold for every function below):
 *  - Layout is row-major and C-contiguous. Images are NCHW: (B, C, H, W) with
 *    H = time (frames) and W = frequency (mel bins), as in PyTorch's
 *    reference encoder (tests/ref/cmr_models.py).
 *  - Shapes are in the comment above each function, as (dim, dim, ...).
 *  - Forward OVERWRITES its outputs and the caches it is given (every value
 *    backward needs: batch-norm mean/rstd, pooling argmax, GRU gates, softmax).
 *  - Backward ACCUMULATES: dinp += ..., dweight += ..., dbias += ... . So the
 *    caller zeroes the gradient buffers once per step (llm.c's
 *    gpt2_zero_grad), and a tensor that feeds two consumers sums their
 *    gradients for free. A gradient pointer may be NULL where the comment
 *    says so: that gradient is then not computed (e.g. dinp of the first
 *    convolution, whose input is data).
 *  - "scratch" buffers are workspace: their contents on entry do not matter
 *    and are not preserved; their size in floats comes from a *_scratch_floats
 *    function. Scratch and outputs must not alias inputs unless a comment
 *    allows it.
 *  - Each kernel built on GEMM (sgemm, conv2d, linear, GRU) and batch norm has
 *    a *_naive twin (plain loops, double accumulation) that
 *    tests/unit/test-nn-*.c use as the reference; the loop-only kernels
 *    (relu, pooling, InfoNCE, Adam) are checked against PyTorch directly.
 *  - The maths matches PyTorch (torch.nn.functional / torch.nn modules; the
 *    fixtures were written with Debian 12's torch 1.13),
 *    each function names the module it matches; tests/ref/make_refs_nn.py
 *    writes the fixtures the unit tests compare against.
 *  - Sizes are int (every tensor in cmr has fewer than 2^31 elements);
 *    element counts of whole buffers are size_t.
 *
 * See docs/nn.md for the derivations of the backward passes and the
 * measured speed.
 */
#ifndef CMR_NN_H
#define CMR_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * GEMM: the one wrapper every layer uses, over cblas_sgemm(CblasRowMajor, ...).
 *
 *   C (M,N) = alpha * op(A) (M,K) . op(B) (K,N) + beta * C
 *
 * Row-major: op(A) = A (M,K) with lda >= K when transa == 0, and
 * op(A) = A^T where A is stored (K,M) with lda >= M when transa != 0;
 * the same for B (ldb >= N, or (N,K) stored with ldb >= K). ldc >= N.
 * beta == 0 ignores C's previous contents (NaNs included), as BLAS does.
 * Threads: whatever OpenBLAS is configured with (see cmr_nn_set_threads).
 */
void cmr_sgemm(int transa, int transb, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc);
/* the same with three loops and double accumulation: the reference in tests */
void cmr_sgemm_naive(int transa, int transb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

/* ---------------------------------------------------------------------------
 * The fixed GEMM, for inference: C (M,N) = A (M,K) . B^T with B (N,K) packed
 * beforehand. Every element C[i][j] is the sum over k in order from 0 of
 * A[i][k] * B[j][k], one fused multiply-add per term where the processor has
 * AVX2 and FMA (one multiply and one add otherwise), from zero: its bits do
 * not depend on M, N, i, j, the other rows or the thread that runs it. That
 * is what makes an embedding independent of its batch (OpenBLAS rounds an
 * element differently depending on where it falls in a call, under some
 * kernel families). About as fast as single-threaded OpenBLAS on the
 * encoder's Winograd shapes (docs/nn.md). lda >= K, ldc >= N.
 */
/* floats of a packed B (N,K): N rounded up to 16, times K */
size_t cmr_gemm_fixed_pack_floats(int N, int K);
/* Bp <- B (N,K) with ldb >= K, in panels of 16 rows of B, zero-padded */
void cmr_gemm_fixed_pack(float *Bp, const float *B, int ldb, int N, int K);
/* C (M,N) = A (M,K) . B^T from Bp; C may not alias A or Bp */
void cmr_gemm_fixed(int M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc);
/* 1 when the AVX2 + FMA kernel runs on this processor, 0 for the portable one */
int cmr_gemm_fixed_fma(void);

/* Sets the number of threads OpenBLAS uses for every later GEMM (process-wide,
 * not thread-safe against running GEMMs). n >= 1. Returns CMR_OK, CMR_EINVAL
 * for n < 1, or CMR_EUNSUPPORTED when the BLAS is not OpenBLAS. */
int cmr_nn_set_threads(int n);
/* OpenBLAS's current thread count, or 1 when the BLAS is not OpenBLAS */
int cmr_nn_get_threads(void);

/* ---------------------------------------------------------------------------
 * conv2d: stride 1, zero padding (PH, PW), with optional bias.
 * Matches torch.nn.Conv2d(C, OC, (KH,KW), stride=1, padding=(PH,PW)) and its
 * weight layout (OC, C, KH, KW). cmr's encoder uses KH = KW = 5, PH = PW = 2,
 * so OH = H and OW = W.
 *   OH = H + 2*PH - KH + 1,  OW = W + 2*PW - KW + 1   (both must be >= 1)
 */
struct cmr_conv2d_dims {
    int B;          /* batch */
    int C, H, W;    /* input channels, height (time), width (frequency) */
    int OC;         /* output channels */
    int KH, KW;     /* kernel size */
    int PH, PW;     /* zero padding on each side, 0 <= P < K */
};

/* CMR_OK, or CMR_EINVAL if a size is < 1, a padding is out of [0, K), or
 * an output size is < 1 */
int cmr_conv2d_check(const struct cmr_conv2d_dims *d);
int cmr_conv2d_oh(const struct cmr_conv2d_dims *d);
int cmr_conv2d_ow(const struct cmr_conv2d_dims *d);
/* floats of scratch that cmr_conv2d_forward and cmr_conv2d_backward need
 * (the same number for both, and for every algorithm; one buffer may serve a
 * whole model, sized for its largest layer) */
size_t cmr_conv2d_scratch_floats(const struct cmr_conv2d_dims *d);

/* inp (B,C,H,W), weight (OC,C,KH,KW), bias (OC) or NULL -> out (B,OC,OH,OW)
 * The algorithm is chosen from the dims (cmr_conv2d_algo): Winograd
 * F(4x4,5x5) for 5x5 padding 2 layers where a cost model measured on the
 * development machine says it is faster (6.25x fewer multiply-adds, but a
 * weight transform per call and transforms per tile; ~1e-6 relative rounding
 * instead of ~1e-7), else im2col + cmr_sgemm. No cache: backward recomputes what it needs from inp
 * (im2col columns would take C*KH*KW*OH*OW floats per image). */
void cmr_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                        const float *bias, const struct cmr_conv2d_dims *d);
/* dout (B,OC,OH,OW), inp (B,C,H,W), weight (OC,C,KH,KW) ->
 *   dinp (B,C,H,W) += dL/dinp        (dinp may be NULL: not computed)
 *   dweight (OC,C,KH,KW) += dL/dW    (may be NULL)
 *   dbias (OC) += dL/db              (may be NULL)
 * The algorithm is cmr_conv2d_algo_backward's: with Winograd these are the
 * exact gradients of the Winograd forward, with im2col of the convolution. */
void cmr_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                         const float *dout, const float *inp, const float *weight,
                         const struct cmr_conv2d_dims *d);

/* The algorithms, for tests, benchmarks and callers that want im2col's
 * rounding: cmr_conv2d_algo says which one cmr_conv2d_forward uses and
 * cmr_conv2d_algo_backward which one cmr_conv2d_backward uses (chosen
 * separately: they may differ, each exact for its own algorithm);
 * the *_algo variants force one (CMR_CONV2D_AUTO = the same choice). They
 * return CMR_OK, or CMR_EINVAL when Winograd is forced on dims it does not
 * cover (kernel other than 5x5 with padding 2). cmr_conv2d_scratch_floats
 * covers every algorithm. */
enum { CMR_CONV2D_AUTO = 0, CMR_CONV2D_IM2COL = 1, CMR_CONV2D_WINOGRAD = 2 };
int cmr_conv2d_algo(const struct cmr_conv2d_dims *d);
int cmr_conv2d_algo_backward(const struct cmr_conv2d_dims *d);
int cmr_conv2d_forward_algo(float *out, float *scratch, const float *inp, const float *weight,
                            const float *bias, const struct cmr_conv2d_dims *d, int algo);
int cmr_conv2d_backward_algo(float *dinp, float *dweight, float *dbias, float *scratch,
                             const float *dout, const float *inp, const float *weight,
                             const struct cmr_conv2d_dims *d, int algo);
/* seven nested loops, double accumulation: the reference in tests (slow) */
void cmr_conv2d_forward_naive(float *out, const float *inp, const float *weight,
                              const float *bias, const struct cmr_conv2d_dims *d);
void cmr_conv2d_backward_naive(float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *weight,
                               const struct cmr_conv2d_dims *d);

/* ---------------------------------------------------------------------------
 * batchnorm2d over (B, C, HW): one mean/variance per channel over the B*HW
 * values of that channel. Matches torch.nn.BatchNorm2d(C, eps, momentum)
 * (affine, track_running_stats).
 * ref: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
 */
#define CMR_BN_EPS 1e-5f
#define CMR_BN_MOMENTUM 0.1f

/* Training mode (batch statistics):
 *   mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), rstd_c = 1/sqrt(var_c + eps)
 *   out = (x - mean_c) * rstd_c * gamma_c + beta_c
 *   running_mean = (1 - momentum) * running_mean + momentum * mean_c
 *   running_var  = (1 - momentum) * running_var  + momentum * var_c * N/(N-1)
 * (unbiased variance in the running estimate, as PyTorch; N = B*HW; with
 * N == 1, where PyTorch refuses, the running variance takes var_c = 0).
 * inp (B,C,HW), gamma (C), beta (C) -> out (B,C,HW); caches mean (C), rstd (C)
 * for backward; running_mean, running_var (C) updated in place (either may be
 * NULL: not tracked). Statistics are accumulated in double. out may alias
 * inp only if backward is given the pre-normalisation input some other way:
 * backward reads inp, so keep inp when training. */
void cmr_batchnorm2d_forward_train(float *out, float *mean, float *rstd,
                                   float *running_mean, float *running_var,
                                   const float *inp, const float *gamma, const float *beta,
                                   int B, int C, int HW, float momentum, float eps);
/* Evaluation mode (running statistics):
 *   out = (x - running_mean_c) / sqrt(running_var_c + eps) * gamma_c + beta_c
 * inp (B,C,HW) -> out (B,C,HW); out may alias inp. */
void cmr_batchnorm2d_forward_eval(float *out, const float *inp, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var, int B, int C, int HW, float eps);
/* Backward of the training path (xhat recomputed from inp, mean, rstd):
 *   dxhat = dout * gamma
 *   dinp  += rstd/N * (N*dxhat - sum(dxhat) - xhat * sum(dxhat*xhat))
 *   dgamma += sum(dout * xhat), dbeta += sum(dout)   (sums over B and HW)
 * dout (B,C,HW), inp (B,C,HW), gamma (C), mean (C), rstd (C) ->
 * dinp (B,C,HW), dgamma (C), dbeta (C); each may be NULL. */
void cmr_batchnorm2d_backward(float *dinp, float *dgamma, float *dbeta,
                              const float *dout, const float *inp, const float *gamma,
                              const float *mean, const float *rstd, int B, int C, int HW);
void cmr_batchnorm2d_forward_train_naive(float *out, float *mean, float *rstd,
                                         float *running_mean, float *running_var,
                                         const float *inp, const float *gamma,
                                         const float *beta, int B, int C, int HW,
                                         float momentum, float eps);
void cmr_batchnorm2d_backward_naive(float *dinp, float *dgamma, float *dbeta,
                                    const float *dout, const float *inp, const float *gamma,
                                    const float *mean, const float *rstd, int B, int C, int HW);

/* ---------------------------------------------------------------------------
 * relu, elementwise over n values. F.relu.
 * forward: out = max(inp, 0) (NaN stays NaN); out may alias inp (in place).
 * backward: dinp += dout * (out > 0), reading the forward OUTPUT, so the
 * in-place forward still has what backward needs. The gradient at 0 is 0,
 * as PyTorch's threshold_backward.                                          */
void cmr_relu_forward(float *out, const float *inp, size_t n);
void cmr_relu_backward(float *dinp, const float *dout, const float *out, size_t n);

/* ---------------------------------------------------------------------------
 * maxpool2d, kernel = stride = (KH, KW), no padding, floor mode. Matches
 * torch.nn.MaxPool2d((KH,KW)): OH = H / KH, OW = W / KW (integer division;
 * trailing rows/columns that do not fill a window are dropped, e.g. 23x12
 * pooled by 4 -> 5x3, 5x3 pooled by (5,3) -> 1x1). The first maximum in
 * row-major window order wins; a NaN in the window wins (PyTorch).
 */
struct cmr_pool2d_dims {
    int B, C, H, W;
    int KH, KW;
};
int cmr_pool2d_check(const struct cmr_pool2d_dims *d);   /* CMR_OK or CMR_EINVAL (OH or OW < 1) */
int cmr_pool2d_oh(const struct cmr_pool2d_dims *d);
int cmr_pool2d_ow(const struct cmr_pool2d_dims *d);
/* inp (B,C,H,W) -> out (B,C,OH,OW); argmax (B,C,OH,OW) cache: the index
 * h*W + w of the winner inside its (H,W) plane (PyTorch's return_indices). */
void cmr_maxpool2d_forward(float *out, int32_t *argmax, const float *inp,
                           const struct cmr_pool2d_dims *d);
/* dout (B,C,OH,OW), argmax -> dinp (B,C,H,W) += dout at the winners */
void cmr_maxpool2d_backward(float *dinp, const float *dout, const int32_t *argmax,
                            const struct cmr_pool2d_dims *d);

/* ---------------------------------------------------------------------------
 * max over time: x.max(dim=2) of (B,C,T,F), the multi-level encoder's heads.
 * inp (B,C,T,F) -> out (B,C,F); argmax (B,C,F) cache: t in [0,T) of the first
 * maximum (a NaN wins, as torch.max).                                       */
void cmr_maxtime_forward(float *out, int32_t *argmax, const float *inp,
                         int B, int C, int T, int F);
/* dout (B,C,F), argmax -> dinp (B,C,T,F) += dout at the winners */
void cmr_maxtime_backward(float *dinp, const float *dout, const int32_t *argmax,
                          int B, int C, int T, int F);

/* ---------------------------------------------------------------------------
 * linear: out = inp W^T + b. Matches torch.nn.Linear(IN, OUT), weight (OUT,IN).
 * inp (N,IN), weight (OUT,IN), bias (OUT) or NULL -> out (N,OUT)                   */
void cmr_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int IN, int OUT);
/* dout (N,OUT) -> dinp (N,IN) += dout W, dweight (OUT,IN) += dout^T inp,
 * dbias (OUT) += sum_n dout; each may be NULL                                 */
void cmr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int IN, int OUT);
/* The same on cmr_gemm_fixed (inference: each row of out depends on its row
 * of inp alone, see cmr_gemm_fixed); scratch holds
 * cmr_linear_fixed_scratch_floats(IN, OUT) floats (the packed weight). */
size_t cmr_linear_fixed_scratch_floats(int IN, int OUT);
void cmr_linear_forward_fixed(float *out, float *scratch, const float *inp, const float *weight,
                              const float *bias, int N, int IN, int OUT);
void cmr_linear_forward_naive(float *out, const float *inp, const float *weight,
                              const float *bias, int N, int IN, int OUT);
void cmr_linear_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int N, int IN, int OUT);

/* ---------------------------------------------------------------------------
 * GRU, one layer, batch_first. Matches torch.nn.GRU(IN, H, batch_first=True):
 * ref: https://pytorch.org/docs/stable/generated/torch.nn.GRU.html
 *   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
 *   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
 *   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
 *   h' = (1 - z) * n + z * h
 * Weights in PyTorch's layout, gate order (r, z, n) along the 3H rows:
 *   w_ih = weight_ih_l0 (3H,IN), w_hh = weight_hh_l0 (3H,H),
 *   b_ih = bias_ih_l0 (3H), b_hh = bias_hh_l0 (3H).
 */
struct cmr_gru_dims {
    int B, T;       /* batch, time steps */
    int IN, H;      /* input size, hidden size (not `I`: <complex.h>, which
                     * OpenBLAS's cblas.h includes, defines I as a macro) */
};
/* floats of the gate cache forward writes and backward reads: B*T*4H,
 * per step (r, z, n, W_hn h + b_hn) */
size_t cmr_gru_cache_floats(const struct cmr_gru_dims *d);
/* floats of scratch for forward and backward: 2*B*T*3H + B*H */
size_t cmr_gru_scratch_floats(const struct cmr_gru_dims *d);

/* inp (B,T,IN), h0 (B,H) or NULL (zeros, PyTorch's default) -> out (B,T,H),
 * the hidden state at every step (out[:, T-1] is the last one, h_n);
 * cache (cmr_gru_cache_floats) for backward.                              */
void cmr_gru_forward(float *out, float *cache, float *scratch, const float *inp,
                     const float *h0, const float *w_ih, const float *w_hh,
                     const float *b_ih, const float *b_hh, const struct cmr_gru_dims *d);
/* Full backpropagation through time, t = T-1 .. 0. dout (B,T,H) is dL/dout at
 * every step (zeros where a step is unused, e.g. all but the last for a loss
 * on c_t) ->
 *   dinp (B,T,IN) += ...  (may be NULL)   dh0 (B,H) += ... (may be NULL)
 *   dw_ih (3H,IN), dw_hh (3H,H), db_ih (3H), db_hh (3H) += ...
 * out, cache: what forward wrote; inp, h0, weights: what forward read.     */
void cmr_gru_backward(float *dinp, float *dh0, float *dw_ih, float *dw_hh,
                      float *db_ih, float *db_hh, float *scratch, const float *dout,
                      const float *out, const float *cache, const float *inp,
                      const float *h0, const float *w_ih, const float *w_hh,
                      const struct cmr_gru_dims *d);
/* step by step, plain loops in double: the reference in tests */
void cmr_gru_forward_naive(float *out, float *cache, const float *inp, const float *h0,
                           const float *w_ih, const float *w_hh, const float *b_ih,
                           const float *b_hh, const struct cmr_gru_dims *d);
void cmr_gru_backward_naive(float *dinp, float *dh0, float *dw_ih, float *dw_hh,
                            float *db_ih, float *db_hh, const float *dout,
                            const float *out, const float *cache, const float *inp,
                            const float *h0, const float *w_ih, const float *w_hh,
                            const struct cmr_gru_dims *d);

/* ---------------------------------------------------------------------------
 * InfoNCE (PAPER.md section 5), anchors against in-batch positives:
 *   S = A P^T / tau (N,N),  loss = -(1/N) sum_i log softmax(S[i,:])[i]
 * which is F.cross_entropy(a @ p.t() / tau, arange(N)) (reference
 * info_nce() in tests/ref/cmr_models.py). Softmax in double with the row
 * maximum subtracted.
 * a (N,D), p (N,D) -> returns the loss; probs (N,N) cache = softmax(S) rows. */
float cmr_infonce_forward(float *probs, const float *a, const float *p, int N, int D, float tau);
/* dS = dloss * (probs - I) / N, then
 *   da (N,D) += dS P / tau,  dp (N,D) += dS^T A / tau   (either may be NULL) */
void cmr_infonce_backward(float *da, float *dp, const float *probs, const float *a,
                          const float *p, int N, int D, float tau, float dloss);
/* contrastive accuracy helper: the number of rows i whose argmax (first
 * maximum) of probs[i,:] is i; divide by N for the accuracy */
int cmr_infonce_correct(const float *probs, int N);

/* ---------------------------------------------------------------------------
 * Adam, torch.optim.Adam semantics (single-tensor path, amsgrad=False,
 * maximize=False), one loop over a contiguous block of n parameters:
 *   g = grad + weight_decay * param          (L2, PyTorch's Adam; 0 in cmr)
 *   m = m + (1 - beta1) * (g - m)            (lerp, as PyTorch)
 *   v = beta2 * v + (1 - beta2) * g * g
 *   param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * t is the step number, starting at 1 for the first update.
 * ref: https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
 */
struct cmr_adam_cfg {       /* double, as PyTorch's Python-float hyperparameters: */
    double lr;              /* 1e-3 */
    double beta1;           /* 0.9 */
    double beta2;           /* 0.999  (1 - beta2 in float would be off by 1e-5) */
    double eps;             /* 1e-8 */
    double weight_decay;    /* 0 */
};
struct cmr_adam_cfg cmr_adam_cfg_default(void);
/* param, grad, m, v: (n) each; m and v start at zero. t >= 1. */
void cmr_adam_update(float *param, const float *grad, float *m, float *v, size_t n,
                     const struct cmr_adam_cfg *cfg, long t);

#endif
