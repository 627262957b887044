/* cmr models: forward and backward passes, the GRU of MelCPC, and the three
 * training losses, over the lib/nn/ kernels. See model.h.
 *
 * Inference (train = 0) takes a lean path per block: conv without bias into
 * one shared buffer, then one fused pass computing
 *   pool(relu((conv + bias - running_mean) * gamma / sqrt(running_var + eps) + beta))
 * (batch norm folded into a per-channel scale and shift). With
 * cmr_model_set_threads(m, n > 1) the batch is split over n threads, each
 * with its own buffers, calling single-threaded BLAS.
 *
 * Training (train = 1) keeps only what backward reads: per block the
 * convolution output (batch norm's input), the pooled map (the next block's
 * input) and the pooling winner as one byte (its place in the window), and
 * batch norm's mean and rstd. Batch norm, ReLU and pooling run as one pass
 * from the convolution output (statistics first), so the normalised map is
 * never stored. Backward walks the blocks in reverse, as llm.c's
 * gpt2_backward, and needs no full-size gradient buffer: the gradient of a
 * block's pooled map reaches only the window winners, and there the ReLU
 * mask is (pooled value > 0), so one pass per channel takes batch norm's two
 * sums over the winners and then writes dL/d(conv output) over the
 * convolution output itself, which nothing reads any more; the convolution's
 * backward reads it from there. Peak training memory is the convolution
 * outputs of every block plus the pooled maps (docs/models.md).
 * With a batch-norm hook (synchronised batch norm, lib/dist.h) the hook
 * writes the normalised map and the gradients into two full-size buffers of
 * the largest block, allocated only then. */
#include <math.h>
#include <pthread.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "nn/vec.h"

#define MAX_WORKERS 64


/* the buffers of one worker (one slice of a batch) */
struct job;

struct worker {
    int cap;                          /* segments */
    int train;                        /* training caches allocated */
    float *x;                         /* (cap, 1, T, F) standardised input */
    float *conv[CMR_MODEL_BLOCKS];    /* train: (cap,C,H,W) per block; eval: conv[0] is shared */
    float *pool[CMR_MODEL_BLOCKS];    /* (cap,C,OH,OW) */
    uint8_t *arg[CMR_MODEL_BLOCKS];   /* train: (cap,C,OH,OW) the winner's place kh*KW+kw in its window */
    float *mt[CMR_MODEL_BLOCKS];      /* multi: (cap, C*OW) max over time */
    int32_t *mt_arg[CMR_MODEL_BLOCKS];/* multi, train: (cap, C*OW) */
    float *lvl[CMR_MODEL_BLOCKS];     /* multi: (cap, emb) head outputs */
    float *scratch;                   /* conv scratch */

    struct job *job;                  /* the threaded forward it works on */
};

struct cmr_model_acts {
    int nw;                           /* workers allocated */
    struct worker w[MAX_WORKERS];
    float *bn_mean[CMR_MODEL_BLOCKS], *bn_rstd[CMR_MODEL_BLOCKS]; /* train caches (C) */
    float *scale[CMR_MODEL_BLOCKS], *shift[CMR_MODEL_BLOCKS];     /* eval: folded batch norm (C) */
    int n_fwd;                        /* segments of the last training forward, 0 if none */
    /* backward: p1, p2 the pooled-map gradients (alternating); hook1, hook2
     * full-size, only with a bn_hook */
    float *p1, *p2, *dtmp, *hook1, *hook2;
    size_t p1_cap, p2_cap, dtmp_cap, hook1_cap, hook2_cap;
    /* GRU */
    float *gx, *gh0, *gout, *gcache, *gscratch;
    size_t gx_cap, gh0_cap, gout_cap, gcache_cap, gscratch_cap;
    int gB, gS, g_has_h0, g_train;
    /* losses */
    float *lbuf;
    size_t lbuf_cap;
};

/* ---- sizes ---- */

/* the input map (H, W) and output map (OH, OW) of block l */
static void block_dims(const struct cmr_model_cfg *c, int l, int *H, int *W, int *OH, int *OW)
{
    int h = c->n_time, w = c->n_freq;
    for (int i = 0; i < l; i++) {
        h /= cmr_model_pools[i][0];
        w /= cmr_model_pools[i][1];
    }
    *H = h;
    *W = w;
    *OH = h / cmr_model_pools[l][0];
    *OW = w / cmr_model_pools[l][1];
}

static struct cmr_conv2d_dims conv_dims(const struct cmr_model_cfg *c, int l, int B)
{
    int H, W, OH, OW;
    block_dims(c, l, &H, &W, &OH, &OW);
    struct cmr_conv2d_dims d = {B, l ? c->widths[l - 1] : 1, H, W, c->widths[l], 5, 5, 2, 2};
    return d;
}

static int grow(float **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    float *q = malloc(n * sizeof *q);
    if (!q)
        return -1;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

/* worker buffers start on a cache line: every worker then runs a segment's
 * GEMMs on buffers of the same alignment (see trunk_eval) */
static void *alloc_aligned(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 1) ? NULL : p;
}

static void worker_free(struct worker *w)
{
    free(w->x);
    free(w->scratch);
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        free(w->conv[l]);
        free(w->pool[l]);
        free(w->arg[l]);
        free(w->mt[l]);
        free(w->mt_arg[l]);
        free(w->lvl[l]);
    }
    memset(w, 0, sizeof *w);
}

void cmr_model_acts_free(struct cmr_model *m)
{
    struct cmr_model_acts *a = m->acts;
    if (!a)
        return;
    for (int i = 0; i < a->nw; i++)
        worker_free(&a->w[i]);
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        free(a->bn_mean[l]);
        free(a->bn_rstd[l]);
        free(a->scale[l]);
        free(a->shift[l]);
    }
    free(a->hook1);
    free(a->hook2);
    free(a->p1);
    free(a->p2);
    free(a->dtmp);
    free(a->gx);
    free(a->gh0);
    free(a->gout);
    free(a->gcache);
    free(a->gscratch);
    free(a->lbuf);
    free(a);
    m->acts = NULL;
}

/* floats of scratch the inference linear layers pack their weights into */
static size_t linear_pack_floats(const struct cmr_model_cfg *c)
{
    size_t n = 0;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        int H, W, OH, OW;
        block_dims(c, l, &H, &W, &OH, &OW);
        size_t k = c->kind == CMR_MODEL_MULTI ? cmr_linear_fixed_scratch_floats(c->widths[l] * OW, c->emb) : 0;
        n = k > n ? k : n;
    }
    size_t k = cmr_linear_fixed_scratch_floats(c->widths[4], c->emb);
    return k > n ? k : n;
}

static size_t worker_bytes(const struct cmr_model_cfg *c, int cap, int train)
{
    size_t n = (size_t)cap * CMR_MODEL_SEG, conv_max = 0, scratch = 0, bytes = 0;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        int H, W, OH, OW;
        block_dims(c, l, &H, &W, &OH, &OW);
        size_t full = (size_t)cap * c->widths[l] * H * W, pooled = (size_t)cap * c->widths[l] * OH * OW;
        struct cmr_conv2d_dims d = conv_dims(c, l, cap);
        size_t s = cmr_conv2d_scratch_floats(&d);
        if (s > scratch)
            scratch = s;
        if (full > conv_max)
            conv_max = full;
        n += pooled;
        if (train) {
            n += full;
            bytes += pooled; /* arg */
        }
        if (c->kind == CMR_MODEL_MULTI)
            n += (size_t)cap * c->widths[l] * OW * (train ? 2 : 1) + (size_t)cap * c->emb;
    }
    if (!train)
        n += conv_max;
    size_t lin = linear_pack_floats(c);
    if (lin > scratch)
        scratch = lin;
    return (n + scratch) * sizeof(float) + bytes;
}

static int worker_alloc(struct worker *w, const struct cmr_model_cfg *c, int cap, int train)
{
    worker_free(w);
    w->cap = cap;
    w->train = train;
    size_t conv_max = 0, scratch = 0;
    int bad = !(w->x = alloc_aligned((size_t)cap * CMR_MODEL_SEG * sizeof(float)));
    for (int l = 0; l < CMR_MODEL_BLOCKS && !bad; l++) {
        int H, W, OH, OW;
        block_dims(c, l, &H, &W, &OH, &OW);
        size_t full = (size_t)cap * c->widths[l] * H * W, pooled = (size_t)cap * c->widths[l] * OH * OW;
        struct cmr_conv2d_dims d = conv_dims(c, l, cap);
        size_t s = cmr_conv2d_scratch_floats(&d);
        if (s > scratch)
            scratch = s;
        if (full > conv_max)
            conv_max = full;
        bad |= !(w->pool[l] = alloc_aligned(pooled * sizeof(float)));
        if (train) {
            bad |= !(w->conv[l] = alloc_aligned(full * sizeof(float)));
            bad |= !(w->arg[l] = alloc_aligned(pooled ? pooled : 1));
        }
        if (c->kind == CMR_MODEL_MULTI) {
            size_t nmt = (size_t)cap * c->widths[l] * OW;
            bad |= !(w->mt[l] = alloc_aligned(nmt * sizeof(float)));
            bad |= !(w->lvl[l] = alloc_aligned((size_t)cap * c->emb * sizeof(float)));
            if (train)
                bad |= !(w->mt_arg[l] = alloc_aligned(nmt * sizeof(int32_t)));
        }
    }
    if (!train && !bad)
        bad = !(w->conv[0] = alloc_aligned(conv_max * sizeof(float)));
    size_t lin = linear_pack_floats(c);
    if (lin > scratch)
        scratch = lin;
    if (!bad)
        bad = !(w->scratch = alloc_aligned((scratch ? scratch : 1) * sizeof(float)));
    if (bad) {
        worker_free(w);
        return CMR_ENOMEM;
    }
    return CMR_OK;
}

static int acts_get(struct cmr_model *m)
{
    if (m->acts)
        return CMR_OK;
    struct cmr_model_acts *a = calloc(1, sizeof *a);
    if (!a)
        return CMR_ENOMEM;
    int bad = 0;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        size_t C = (size_t)m->cfg.widths[l];
        bad |= !(a->bn_mean[l] = malloc(C * sizeof(float)));
        bad |= !(a->bn_rstd[l] = malloc(C * sizeof(float)));
        bad |= !(a->scale[l] = malloc(C * sizeof(float)));
        bad |= !(a->shift[l] = malloc(C * sizeof(float)));
    }
    m->acts = a;
    if (bad) {
        cmr_model_acts_free(m);
        return CMR_ENOMEM;
    }
    return CMR_OK;
}

/* with a bn_hook: two full-size buffers of the largest block (the hook's
 * normalised output in forward; its gradient input and output in backward) */
static int hook_reserve(struct cmr_model *m, int n)
{
    struct cmr_model_acts *a = m->acts;
    if (!m->bn_hook)
        return 0;
    size_t gmax = 0;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        int H, W, OH, OW;
        block_dims(&m->cfg, l, &H, &W, &OH, &OW);
        size_t full = (size_t)n * m->cfg.widths[l] * H * W;
        gmax = full > gmax ? full : gmax;
    }
    return grow(&a->hook1, &a->hook1_cap, gmax) || grow(&a->hook2, &a->hook2_cap, gmax);
}

int cmr_model_reserve(struct cmr_model *m, int max_batch, int train, struct cmr_error *err)
{
    if (max_batch < 1)
        return cmr_error_set(err, CMR_EINVAL, "model: batch should be >= 1, got %d", max_batch);
    if (acts_get(m))
        return cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
    struct cmr_model_acts *a = m->acts;
    int nw = train ? 1 : m->threads, cap = train ? max_batch : (max_batch + nw - 1) / nw;
    if (nw > MAX_WORKERS)
        nw = MAX_WORKERS;
    for (int i = 0; i < nw; i++) {
        struct worker *w = &a->w[i];
        if (i < a->nw && w->cap >= cap && (w->train || !train))
            continue;
        int keep_train = i < a->nw && w->train; /* worker 0 keeps its training caches */
        int ncap = i < a->nw && w->cap > cap ? w->cap : cap;
        if (worker_alloc(w, &m->cfg, ncap, train || keep_train)) {
            size_t b = worker_bytes(&m->cfg, ncap, train || keep_train);
            if (i >= a->nw)
                a->nw = i; /* workers [0, i) are valid */
            return cmr_error_set(err, CMR_ENOMEM,
                                 "model: out of memory for the activations of %d segments (%.1f MB)",
                                 ncap, b / 1e6);
        }
        if (i >= a->nw)
            a->nw = i + 1;
    }
    if (train) {
        /* backward passes the pooled-map gradients back and forth between
         * p1 (block 4's, then 2's, then 0's) and p2 (3's and 1's) */
        int H, W, OH, OW;
        size_t pneed[2] = {0, 0};
        for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
            block_dims(&m->cfg, l, &H, &W, &OH, &OW);
            size_t pooled = (size_t)max_batch * m->cfg.widths[l] * OH * OW;
            int i = (CMR_MODEL_BLOCKS - 1 - l) % 2;
            pneed[i] = pooled > pneed[i] ? pooled : pneed[i];
        }
        size_t dt = (size_t)max_batch * (cmr_model_out_dim(&m->cfg) + 8 * (size_t)m->cfg.emb);
        if (grow(&a->p1, &a->p1_cap, pneed[0]) || grow(&a->p2, &a->p2_cap, pneed[1]) ||
            grow(&a->dtmp, &a->dtmp_cap, dt) || hook_reserve(m, max_batch))
            return cmr_error_set(err, CMR_ENOMEM, "model: out of memory for the gradients of %d segments",
                                 max_batch);
    }
    return CMR_OK;
}

size_t cmr_model_act_bytes(const struct cmr_model *m)
{
    const struct cmr_model_acts *a = m->acts;
    if (!a)
        return 0;
    size_t n = 0;
    for (int i = 0; i < a->nw; i++)
        n += worker_bytes(&m->cfg, a->w[i].cap, a->w[i].train);
    n += (a->hook1_cap + a->hook2_cap + a->p1_cap + a->p2_cap + a->dtmp_cap + a->gx_cap + a->gh0_cap + a->gout_cap +
          a->gcache_cap + a->gscratch_cap + a->lbuf_cap) * sizeof(float);
    return n;
}

int cmr_model_set_threads(struct cmr_model *m, int n)
{
    if (n < 1 || n > MAX_WORKERS)
        return CMR_EINVAL;
    m->threads = n;
    if (n > 1)
        cmr_nn_set_threads(1); /* one owner of threading: ours */
    return CMR_OK;
}

/* ---- forward ---- */

#if defined(__SSE2__)
/* one output row of a 2x2 window: r0, r1 two input rows of 2*OW values
 * (OW a multiple of 4); ext = max (s >= 0) or min (s < 0) */
static void pool2x2_row_sse(float *op, const float *r0, const float *r1, int OW, float s, float t)
{
    const __m128 vs = _mm_set1_ps(s), vt = _mm_set1_ps(t), zero = _mm_setzero_ps();
    for (int ow = 0; ow < OW; ow += 4) {
        __m128 a0 = _mm_loadu_ps(r0 + 2 * ow), a1 = _mm_loadu_ps(r0 + 2 * ow + 4);
        __m128 b0 = _mm_loadu_ps(r1 + 2 * ow), b1 = _mm_loadu_ps(r1 + 2 * ow + 4);
        __m128 m0, m1, ev, od, m;
        if (s >= 0) {
            m0 = _mm_max_ps(a0, b0);
            m1 = _mm_max_ps(a1, b1);
        } else {
            m0 = _mm_min_ps(a0, b0);
            m1 = _mm_min_ps(a1, b1);
        }
        ev = _mm_shuffle_ps(m0, m1, _MM_SHUFFLE(2, 0, 2, 0));
        od = _mm_shuffle_ps(m0, m1, _MM_SHUFFLE(3, 1, 3, 1));
        m = s >= 0 ? _mm_max_ps(ev, od) : _mm_min_ps(ev, od);
        _mm_storeu_ps(op + ow, _mm_max_ps(_mm_add_ps(_mm_mul_ps(m, vs), vt), zero));
    }
}
#endif

/* the fused eval epilogue: out (B,C,OH,OW) = pool(relu(y * scale_c + shift_c)) of y (B,C,H,W).
 * y * s + t is monotone in y (non-decreasing for s >= 0, non-increasing for
 * s < 0, rounding included), so the pooled value is the window's max (or
 * min) through the affine map once: exactly the element-wise result. The
 * inputs are finite (checked), so NaN ordering does not arise. */
static void bn_relu_pool_eval(float *out, const float *y, const float *scale, const float *shift,
                              int B, int C, int H, int W, int KH, int KW)
{
    const int OH = H / KH, OW = W / KW;
    for (int bc = 0; bc < B * C; bc++) {
        const float s = scale[bc % C], t = shift[bc % C];
        const float *yp = y + (size_t)bc * H * W;
        float *op = out + (size_t)bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const float *r = yp + (size_t)oh * KH * W;
#if defined(__SSE2__)
            if (KH == 2 && KW == 2 && OW % 4 == 0) {
                pool2x2_row_sse(op + oh * OW, r, r + W, OW, s, t);
                continue;
            }
#endif
            for (int ow = 0; ow < OW; ow++) {
                float m = r[ow * KW];
                for (int kh = 0; kh < KH; kh++)
                    for (int kw = 0; kw < KW; kw++) {
                        float v = r[(size_t)kh * W + ow * KW + kw];
                        m = s >= 0 ? (v > m ? v : m) : (v < m ? v : m);
                    }
                float v = m * s + t;
                op[oh * OW + ow] = v > 0 ? v : 0;
            }
        }
    }
}

/* Training batch norm's statistics of block l over conv (B,C,HW), as
 * cmr_batchnorm2d_forward_train computes them (lib/nn/batchnorm.c: 16 float
 * lanes per row, rows summed in double, two passes): mean and rstd cached
 * for backward, running statistics updated, and the output's per-channel
 * scale and shift (out = conv * scale + shift) left in a->scale, a->shift. */
static void bn_train_stats(struct cmr_model *m, int l, const float *conv, int B, int C, int HW)
{
    struct cmr_model_acts *a = m->acts;
    const float *gamma = m->p.blk[l].bn_w, *beta = m->p.blk[l].bn_b;
    const double n = (double)B * HW, mom = CMR_BN_MOMENTUM;
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int b = 0; b < B; b++)
            s += vsum(conv + ((size_t)b * C + c) * HW, (size_t)HW);
        double mean = s / n;
        for (int b = 0; b < B; b++)
            q += vsum_sqdev(conv + ((size_t)b * C + c) * HW, (size_t)HW, (float)mean);
        double var = q / n;
        float rs = (float)(1.0 / sqrt(var + CMR_BN_EPS));
        a->bn_mean[l][c] = (float)mean;
        a->bn_rstd[l][c] = rs;
        m->s.mean[l][c] = (float)((1.0 - mom) * m->s.mean[l][c] + mom * mean);
        double unbiased = n > 1 ? var * n / (n - 1) : 0.0;
        m->s.var[l][c] = (float)((1.0 - mom) * m->s.var[l][c] + mom * unbiased);
        a->scale[l][c] = rs * gamma[c];
        a->shift[l][c] = (float)(beta[c] - mean * rs * gamma[c]);
    }
}

/* The training epilogue: out (B,C,OH,OW) = maxpool(relu(y * scale_c +
 * shift_c)) of y (B,C,H,W), with arg the winner's place kh*KW + kw in its
 * window: the first maximum in window order (a NaN wins), as
 * cmr_batchnorm2d_forward_train, cmr_relu_forward and cmr_maxpool2d_forward
 * one after the other, without the full-size map in between. */
static inline float relu1(float v) { return v < 0.0f ? 0.0f : v; }

static void bn_relu_pool_train(float *out, uint8_t *arg, const float *y, const float *scale,
                               const float *shift, int B, int C, int H, int W, int KH, int KW)
{
    const int OH = H / KH, OW = W / KW;
    for (int bc = 0; bc < B * C; bc++) {
        const float s = scale[bc % C], t = shift[bc % C];
        const float *yp = y + (size_t)bc * H * W;
        float *op = out + (size_t)bc * OH * OW;
        uint8_t *ap = arg + (size_t)bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const float *r = yp + (size_t)oh * KH * W;
            int ow = 0;
#if defined(__SSE2__)
            if (KH == 2 && KW == 2) {
                const __m128 vs = _mm_set1_ps(s), vt = _mm_set1_ps(t), zero = _mm_setzero_ps();
                const __m128i one = _mm_set1_epi32(1), two = _mm_set1_epi32(2), three = _mm_set1_epi32(3);
                for (; ow + 4 <= OW; ow += 4) {
                    __m128 a0 = _mm_loadu_ps(r + 2 * ow), a1 = _mm_loadu_ps(r + 2 * ow + 4);
                    __m128 b0 = _mm_loadu_ps(r + W + 2 * ow), b1 = _mm_loadu_ps(r + W + 2 * ow + 4);
                    /* relu(y*s + t): x < 0 ? 0 : x keeps a NaN */
#define AFF(v) (v = _mm_add_ps(_mm_mul_ps(v, vs), vt), v = _mm_andnot_ps(_mm_cmplt_ps(v, zero), v))
                    AFF(a0), AFF(a1), AFF(b0), AFF(b1);
#undef AFF
                    __m128 v00 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)); /* (0,0) of 4 windows */
                    __m128 v01 = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1)); /* (0,1) */
                    __m128 v10 = _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0)); /* (1,0) */
                    __m128 v11 = _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1)); /* (1,1) */
                    __m128 mx = v00, c;
                    __m128i id = _mm_setzero_si128(), ci;
#define TAKE(v, k)                                                                      \
    (c = _mm_or_ps(_mm_cmpgt_ps(v, mx), _mm_cmpunord_ps(v, v)), ci = _mm_castps_si128(c), \
     mx = _mm_or_ps(_mm_and_ps(c, v), _mm_andnot_ps(c, mx)),                             \
     id = _mm_or_si128(_mm_and_si128(ci, k), _mm_andnot_si128(ci, id)))
                    TAKE(v01, one), TAKE(v10, two), TAKE(v11, three);
#undef TAKE
                    _mm_storeu_ps(op + (size_t)oh * OW + ow, mx);
                    id = _mm_packs_epi32(id, id);
                    id = _mm_packus_epi16(id, id);
                    uint32_t ids = (uint32_t)_mm_cvtsi128_si32(id);
                    memcpy(ap + (size_t)oh * OW + ow, &ids, 4);
                }
            }
#endif
            for (; ow < OW; ow++) {
                const float *q = r + (size_t)ow * KW;
                float mx = relu1(q[0] * s + t);
                int best = 0;
                for (int kh = 0; kh < KH; kh++)
                    for (int kw = 0; kw < KW; kw++) {
                        float v = relu1(q[(size_t)kh * W + kw] * s + t);
                        if (v > mx || v != v) {
                            mx = v;
                            best = kh * KW + kw;
                        }
                    }
                op[(size_t)oh * OW + ow] = mx;
                ap[(size_t)oh * OW + ow] = (uint8_t)best;
            }
        }
    }
}

/* The gradient at the window winners of one (H,W) plane, through ReLU
 * (zero where the pooled value is not > 0, as cmr_relu_backward reading the
 * ReLU output): calls f(pos, g) for each window with a nonzero gradient */
#define FOR_WINNERS(dp, pp, ap, OH, OW, KH, KW, W, BODY)                          \
    for (int oh_ = 0; oh_ < (OH); oh_++)                                          \
        for (int ow_ = 0; ow_ < (OW); ow_++) {                                    \
            size_t j_ = (size_t)oh_ * (OW) + ow_;                                 \
            if (!((pp)[j_] > 0))                                                  \
                continue;                                                         \
            const float g = (dp)[j_];                                             \
            const size_t pos = ((size_t)oh_ * (KH) + (ap)[j_] / (KW)) * (W) +     \
                               (size_t)ow_ * (KW) + (ap)[j_] % (KW);              \
            BODY;                                                                 \
        }

/* dpool (B,C,OH,OW) -> dx (B,C,H,W) += the scattered gradient (the hook path) */
static void relu_pool_scatter(float *dx, const float *dpool, const float *pool, const uint8_t *arg, int B,
                              int C, int H, int W, int KH, int KW)
{
    const int OH = H / KH, OW = W / KW;
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        const float *dp = dpool + bc * OH * OW, *pp = pool + bc * OH * OW;
        const uint8_t *ap = arg + bc * OH * OW;
        float *xp = dx + bc * H * W;
        FOR_WINNERS(dp, pp, ap, OH, OW, KH, KW, W, xp[pos] += g)
    }
}

/* The backward of out = maxpool(relu(batchnorm(x))) in training mode, from
 * dpool (B,C,OH,OW), the forward's pool and arg, and x (B,C,H,W) (batch
 * norm's input, with mean and rstd): dgamma, dbeta (C) += ..., and x is
 * OVERWRITTEN with dL/dx. As cmr_batchnorm2d_backward with dout = the
 * scattered gradient g (zero off the winners):
 *   dx = k*g + (x - mean) * kq + ka,  k = gamma*rstd,
 *   ka = -k * sum(g)/N,  kq = -k * rstd * sum(g * xhat)/N
 * the sums over the winners only (in double). */
static void bn_relu_pool_backward(float *x, float *dgamma, float *dbeta, const float *dpool, const float *pool,
                                  const uint8_t *arg, const float *gamma, const float *mean, const float *rstd,
                                  int B, int C, int H, int W, int KH, int KW)
{
    const int OH = H / KH, OW = W / KW;
    const size_t HW = (size_t)H * W, P = (size_t)OH * OW;
    const double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        const float m = mean[c], rs = rstd[c];
        double sd = 0, sdx = 0;
        for (int b = 0; b < B; b++) {
            size_t bc = (size_t)b * C + c;
            const float *dp = dpool + bc * P, *pp = pool + bc * P, *xp = x + bc * HW;
            const uint8_t *ap = arg + bc * P;
            FOR_WINNERS(dp, pp, ap, OH, OW, KH, KW, W, (sd += g, sdx += (double)g * (xp[pos] - m)))
        }
        sdx *= rs;
        dbeta[c] += (float)sd;
        dgamma[c] += (float)sdx;
        const float k = gamma[c] * rs;
        const float ka = (float)(-k * (sd / n)), kq = (float)(-k * rs * (sdx / n));
        const v4f vka = v4f_set1(ka), vkq = v4f_set1(kq), vm = v4f_set1(m);
        for (int b = 0; b < B; b++) {
            size_t bc = (size_t)b * C + c;
            const float *dp = dpool + bc * P, *pp = pool + bc * P;
            const uint8_t *ap = arg + bc * P;
            float *xp = x + bc * HW;
            size_t j = 0;
            for (; j + 4 <= HW; j += 4)
                v4f_store(xp + j, (v4f_load(xp + j) - vm) * vkq + vka);
            for (; j < HW; j++)
                xp[j] = (xp[j] - m) * kq + ka;
            FOR_WINNERS(dp, pp, ap, OH, OW, KH, KW, W, xp[pos] += k * g)
        }
    }
}

/* the eval scale and shift of every block, from the parameters and running statistics */
static void fold_bn(struct cmr_model *m)
{
    struct cmr_model_acts *a = m->acts;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        const struct cmr_block_params *p = &m->p.blk[l];
        for (int c = 0; c < m->cfg.widths[l]; c++) {
            float s = p->bn_w[c] / sqrtf(m->s.var[l][c] + CMR_BN_EPS);
            a->scale[l][c] = s;
            a->shift[l][c] = (p->conv_b[c] - m->s.mean[l][c]) * s + p->bn_b[c];
        }
    }
}

/* x (n, CMR_MODEL_SEG) = the model's input standardisation of in */
static void standardise(float *x, const float *in, int n, const struct cmr_model_cfg *c)
{
    const float mean = c->mel_mean, inv = 1.0f / c->mel_std;
    size_t nx = (size_t)n * CMR_MODEL_SEG;
    for (size_t i = 0; i < nx; i++)
        x[i] = (in[i] - mean) * inv;
}

/* Inference on n segments of worker w; out (n, out dim of forward).
 * An embedding is a pure function of its segment and the model: never of
 * the batch it came in, its place in it, the thread that ran it or the
 * other tracks of the stream. OpenBLAS rounds an element of a GEMM
 * differently depending on where it falls in the call (against the
 * kernel's unroll, its blocking and the thread partition), under some
 * kernel families (Haswell, Zen, SkylakeX) and not others, so every GEMM
 * here either has a shape fixed by the model alone (one image of a large
 * map: conv2d) or runs on cmr_gemm_fixed, whose elements are computed the
 * same wherever they sit (Winograd, small maps, the linear layers); BLAS
 * runs on one thread (cmr_model_forward). */
static void trunk_eval(struct cmr_model *m, struct worker *w, const float *in, int n, float *out)
{
    const struct cmr_model_cfg *c = &m->cfg;
    struct cmr_model_acts *a = m->acts;
    standardise(w->x, in, n, c);
    const float *h = w->x;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        const struct cmr_block_params *p = &m->p.blk[l];
        struct cmr_conv2d_dims d = conv_dims(c, l, n);
        int C = d.OC;
        cmr_conv2d_forward(w->conv[0], w->scratch, h, p->conv_w, NULL, &d);
        bn_relu_pool_eval(w->pool[l], w->conv[0], a->scale[l], a->shift[l], n, C, d.H, d.W, cmr_model_pools[l][0],
                          cmr_model_pools[l][1]);
        int OH = d.H / cmr_model_pools[l][0], OW = d.W / cmr_model_pools[l][1];
        if (c->kind == CMR_MODEL_MULTI) {
            int nin = C * OW, E = c->emb;
            /* max over time without the argmax cache */
            for (int bc = 0; bc < n * C; bc++)
                for (int f = 0; f < OW; f++) {
                    const float *src = w->pool[l] + (size_t)bc * OH * OW + f;
                    float mx = src[0];
                    for (int t = 1; t < OH; t++)
                        mx = src[(size_t)t * OW] > mx ? src[(size_t)t * OW] : mx;
                    w->mt[l][(size_t)bc * OW + f] = mx;
                }
            cmr_linear_forward_fixed(w->lvl[l], w->scratch, w->mt[l], m->p.head_w[l], m->p.head_b[l], n, nin, E);
            for (int i = 0; i < n; i++)
                memcpy(out + ((size_t)i * CMR_MODEL_BLOCKS + l) * E, w->lvl[l] + (size_t)i * E,
                       (size_t)E * sizeof(float));
        }
        h = w->pool[l];
    }
    if (c->kind != CMR_MODEL_MULTI)
        cmr_linear_forward_fixed(out, w->scratch, w->pool[4], m->p.fc_w, m->p.fc_b, n, c->widths[4], c->emb);
}

/* Training on n segments (worker 0); out (n, out dim of forward) */
static void trunk_train(struct cmr_model *m, struct worker *w, const float *in, int n, float *out)
{
    const struct cmr_model_cfg *c = &m->cfg;
    struct cmr_model_acts *a = m->acts;
    standardise(w->x, in, n, c);
    const float *h = w->x;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        const struct cmr_block_params *p = &m->p.blk[l];
        struct cmr_conv2d_dims d = conv_dims(c, l, n);
        int C = d.OC, HW = d.H * d.W;
        struct cmr_pool2d_dims pd = {n, C, d.H, d.W, cmr_model_pools[l][0], cmr_model_pools[l][1]};
        cmr_conv2d_forward(w->conv[l], w->scratch, h, p->conv_w, p->conv_b, &d);
        const float *y = w->conv[l];
        if (m->bn_hook) {
            /* the hook normalises into hook1; the epilogue then maps by 1, 0 */
            m->bn_hook->forward(m->bn_hook->ctx, l, a->hook1, a->bn_mean[l], a->bn_rstd[l], m->s.mean[l],
                                m->s.var[l], w->conv[l], p->bn_w, p->bn_b, n, C, HW, CMR_BN_MOMENTUM,
                                CMR_BN_EPS);
            for (int ch = 0; ch < C; ch++) {
                a->scale[l][ch] = 1.0f;
                a->shift[l][ch] = 0.0f;
            }
            y = a->hook1;
        } else {
            bn_train_stats(m, l, w->conv[l], n, C, HW);
        }
        bn_relu_pool_train(w->pool[l], w->arg[l], y, a->scale[l], a->shift[l], n, C, d.H, d.W, pd.KH,
                           pd.KW);
        m->bn_count[l]++;
        int OH = d.H / cmr_model_pools[l][0], OW = d.W / cmr_model_pools[l][1];
        if (c->kind == CMR_MODEL_MULTI) {
            int nin = C * OW, E = c->emb;
            cmr_maxtime_forward(w->mt[l], w->mt_arg[l], w->pool[l], n, C, OH, OW);
            cmr_linear_forward(w->lvl[l], w->mt[l], m->p.head_w[l], m->p.head_b[l], n, nin, E);
            for (int i = 0; i < n; i++)
                memcpy(out + ((size_t)i * CMR_MODEL_BLOCKS + l) * E, w->lvl[l] + (size_t)i * E,
                       (size_t)E * sizeof(float));
        }
        h = w->pool[l];
    }
    if (c->kind != CMR_MODEL_MULTI)
        cmr_linear_forward(out, w->pool[4], m->p.fc_w, m->p.fc_b, n, c->widths[4], c->emb);
}

/* a threaded inference pass: chunks of `chunk` segments handed out in order
 * to whichever worker is free (cmr_model_forward makes one per worker) */
struct job {
    struct cmr_model *m;
    const float *x;
    float *out;
    int n, chunk, D;
    int next;           /* the next chunk to take, under lock */
    pthread_mutex_t lock;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct job *j = w->job;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int c = j->next++;
        pthread_mutex_unlock(&j->lock);
        int i0 = c * j->chunk;
        if (i0 >= j->n)
            break;
        int cnt = j->n - i0 < j->chunk ? j->n - i0 : j->chunk;
        trunk_eval(j->m, w, j->x + (size_t)i0 * CMR_MODEL_SEG, cnt, j->out + (size_t)i0 * j->D);
    }
    return NULL;
}

int cmr_model_forward(struct cmr_model *m, const float *x, int n, int train, float *out,
                      struct cmr_error *err)
{
    int rc;
    if (n < 1)
        return cmr_error_set(err, CMR_EINVAL, "model: batch should be >= 1, got %d", n);
    size_t nx = (size_t)n * CMR_MODEL_SEG;
    for (size_t i = 0; i < nx; i++)
        if (!isfinite(x[i]))
            return cmr_error_set(err, CMR_ENAN, "model: segment %zu of the batch holds %s (frame %zu, bin %zu)",
                                 i / CMR_MODEL_SEG, isnan(x[i]) ? "NaN" : "an infinity", i % CMR_MODEL_SEG / CMR_MODEL_F,
                                 i % CMR_MODEL_F);
    if ((rc = cmr_model_reserve(m, n, train, err)))
        return rc;
    struct cmr_model_acts *a = m->acts;
    int D = cmr_model_out_dim(&m->cfg);
    if (m->cfg.kind == CMR_MODEL_CPC)
        D = m->cfg.emb;
    if (train) {
        trunk_train(m, &a->w[0], x, n, out);
        a->n_fwd = n;
        return CMR_OK;
    }
    a->n_fwd = 0; /* an inference pass reuses worker 0's buffers: no backward after it */
    fold_bn(m);
    /* inference runs BLAS on one thread (whatever the caller set for
     * training): a segment's rounding must not depend on a thread partition */
    int blas_threads = cmr_nn_get_threads();
    if (blas_threads != 1)
        cmr_nn_set_threads(1);
    int nw = m->threads < n ? m->threads : n;
    if (nw <= 1) {
        trunk_eval(m, &a->w[0], x, n, out);
        if (blas_threads != 1)
            cmr_nn_set_threads(blas_threads);
        return CMR_OK;
    }
    /* one chunk per thread: every chunk packs the weights of the fixed-GEMM
     * layers again (block 5 at width 1: 26 MB), so fewer, larger chunks (two
     * per thread of at least 4 segments cost 10-15 % at width 1 on two
     * threads); the chunking does not change a bit of the result (trunk_eval) */
    int cap = (n + nw - 1) / nw, chunk = cap;
    struct job j = {m, x, out, n, chunk, D, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[MAX_WORKERS];
    int started[MAX_WORKERS] = {0};
    for (int i = 0; i < nw; i++)
        a->w[i].job = &j;
    for (int i = 1; i < nw; i++)
        started[i] = !pthread_create(&th[i], NULL, worker_main, &a->w[i]);
    worker_main(&a->w[0]); /* takes over the chunks of threads that did not start */
    for (int i = 1; i < nw; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.lock);
    if (blas_threads != 1)
        cmr_nn_set_threads(blas_threads);
    return CMR_OK;
}

/* ---- backward ---- */

int cmr_model_backward(struct cmr_model *m, const float *dout, struct cmr_error *err)
{
    struct cmr_model_acts *a = m->acts;
    const struct cmr_model_cfg *c = &m->cfg;
    if (!a || !a->n_fwd || !a->w[0].train)
        return cmr_error_set(err, CMR_ESTATE, "model: backward without a training forward");
    if (!m->grads)
        return cmr_error_set(err, CMR_ESTATE, "model: backward before cmr_model_zero_grad");
    struct worker *w = &a->w[0];
    int n = a->n_fwd, E = c->emb;
    float *dcur = a->p1, *dprev = a->p2;
    if (c->kind != CMR_MODEL_MULTI) {
        memset(dcur, 0, (size_t)n * c->widths[4] * sizeof(float));
        cmr_linear_backward(dcur, m->g.fc_w, m->g.fc_b, dout, w->pool[4], m->p.fc_w, n, c->widths[4], E);
    } else {
        int H, W, OH, OW;
        block_dims(c, 4, &H, &W, &OH, &OW);
        memset(dcur, 0, (size_t)n * c->widths[4] * OH * OW * sizeof(float));
    }
    for (int l = CMR_MODEL_BLOCKS - 1; l >= 0; l--) {
        struct cmr_conv2d_dims d = conv_dims(c, l, n);
        int C = d.OC, HW = d.H * d.W, OH = d.H / cmr_model_pools[l][0], OW = d.W / cmr_model_pools[l][1];
        struct cmr_pool2d_dims pd = {n, C, d.H, d.W, cmr_model_pools[l][0], cmr_model_pools[l][1]};
        size_t full = (size_t)n * C * HW;
        if (c->kind == CMR_MODEL_MULTI) {
            size_t nmt = (size_t)n * C * OW;
            /* dtmp holds (n, emb) + (n, C*OW) */
            if (grow(&a->dtmp, &a->dtmp_cap, (size_t)n * E + nmt))
                return cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
            float *dl = a->dtmp, *dmt = a->dtmp + (size_t)n * E;
            for (int i = 0; i < n; i++)
                memcpy(dl + (size_t)i * E, dout + ((size_t)i * CMR_MODEL_BLOCKS + l) * E,
                       (size_t)E * sizeof(float));
            memset(dmt, 0, nmt * sizeof(float));
            cmr_linear_backward(dmt, m->g.head_w[l], m->g.head_b[l], dl, w->mt[l], m->p.head_w[l], n,
                                C * OW, E);
            cmr_maxtime_backward(dcur, dmt, w->mt_arg[l], n, C, OH, OW);
        }
        /* dconv: dL/d(conv output), over the conv output itself (or the hook's buffer) */
        float *dconv = w->conv[l];
        if (m->bn_hook) {
            if (hook_reserve(m, n))
                return cmr_error_set(err, CMR_ENOMEM, "model: out of memory for the gradients of %d segments", n);
            memset(a->hook1, 0, full * sizeof(float));
            relu_pool_scatter(a->hook1, dcur, w->pool[l], w->arg[l], n, C, d.H, d.W, pd.KH, pd.KW);
            memset(a->hook2, 0, full * sizeof(float));
            m->bn_hook->backward(m->bn_hook->ctx, l, a->hook2, m->g.blk[l].bn_w, m->g.blk[l].bn_b, a->hook1,
                                 w->conv[l], m->p.blk[l].bn_w, a->bn_mean[l], a->bn_rstd[l], n, C, HW);
            dconv = a->hook2;
        } else {
            bn_relu_pool_backward(w->conv[l], m->g.blk[l].bn_w, m->g.blk[l].bn_b, dcur, w->pool[l], w->arg[l],
                                  m->p.blk[l].bn_w, a->bn_mean[l], a->bn_rstd[l], n, C, d.H, d.W, pd.KH,
                                  pd.KW);
        }
        if (l > 0) {
            memset(dprev, 0, (size_t)n * d.C * HW * sizeof(float));
            cmr_conv2d_backward(dprev, m->g.blk[l].conv_w, m->g.blk[l].conv_b, w->scratch, dconv,
                                w->pool[l - 1], m->p.blk[l].conv_w, &d);
        } else {
            cmr_conv2d_backward(NULL, m->g.blk[l].conv_w, m->g.blk[l].conv_b, w->scratch, dconv, w->x,
                                m->p.blk[l].conv_w, &d);
        }
        float *t = dcur;
        dcur = dprev;
        dprev = t;
    }
    a->n_fwd = 0; /* the conv outputs now hold gradients: one backward per forward */
    return CMR_OK;
}

/* ---- the GRU of MelCPC ---- */

/* Inference: one step of one sequence per GRU call, in fixed buffers, so
 * that a step's context vector does not depend on how the caller cut the
 * track into calls (cmr-encode's batches, cmrencode's buffers) or on the
 * other sequences of the call (see trunk_eval). */
static int gru_eval(struct cmr_model *m, const float *z, const float *h0, int B, int S, float *c,
                    struct cmr_error *err)
{
    struct cmr_model_acts *a = m->acts;
    const int E = m->cfg.emb, H = m->cfg.hidden;
    struct cmr_gru_dims d = {1, 1, E, H};
    if (grow(&a->gx, &a->gx_cap, (size_t)E) || grow(&a->gh0, &a->gh0_cap, (size_t)H) ||
        grow(&a->gout, &a->gout_cap, (size_t)H) || grow(&a->gcache, &a->gcache_cap, cmr_gru_cache_floats(&d)) ||
        grow(&a->gscratch, &a->gscratch_cap, cmr_gru_scratch_floats(&d)))
        return cmr_error_set(err, CMR_ENOMEM, "model: out of memory for the GRU");
    int blas_threads = cmr_nn_get_threads();
    if (blas_threads != 1)
        cmr_nn_set_threads(1);
    for (int b = 0; b < B; b++) {
        int have_h = h0 != NULL;
        if (have_h)
            memcpy(a->gh0, h0 + (size_t)b * H, (size_t)H * sizeof(float));
        for (int t = 0; t < S; t++) {
            memcpy(a->gx, z + ((size_t)b * S + t) * E, (size_t)E * sizeof(float));
            cmr_gru_forward(a->gout, a->gcache, a->gscratch, a->gx, have_h ? a->gh0 : NULL, m->p.gru_w_ih,
                            m->p.gru_w_hh, m->p.gru_b_ih, m->p.gru_b_hh, &d);
            memcpy(c + ((size_t)b * S + t) * H, a->gout, (size_t)H * sizeof(float));
            memcpy(a->gh0, a->gout, (size_t)H * sizeof(float));
            have_h = 1;
        }
    }
    if (blas_threads != 1)
        cmr_nn_set_threads(blas_threads);
    a->gB = B;
    a->gS = S;
    a->g_has_h0 = h0 != NULL;
    a->g_train = 0;
    return CMR_OK;
}

int cmr_model_gru_forward(struct cmr_model *m, const float *z, const float *h0, int B, int S,
                          int train, float *c, struct cmr_error *err)
{
    const struct cmr_model_cfg *cf = &m->cfg;
    if (cf->kind != CMR_MODEL_CPC)
        return cmr_error_set(err, CMR_ESTATE, "model: a %s model has no GRU", cmr_model_kind_name(cf->kind));
    if (B < 1 || S < 1)
        return cmr_error_set(err, CMR_EINVAL, "model: GRU batch and steps should be >= 1, got %d, %d", B, S);
    if (acts_get(m))
        return cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
    struct cmr_model_acts *a = m->acts;
    if (!train)
        return gru_eval(m, z, h0, B, S, c, err);
    struct cmr_gru_dims d = {B, S, cf->emb, cf->hidden};
    size_t nx = (size_t)B * S * cf->emb, nh = (size_t)B * cf->hidden, no = (size_t)B * S * cf->hidden;
    if (grow(&a->gx, &a->gx_cap, nx) || grow(&a->gh0, &a->gh0_cap, nh) ||
        grow(&a->gout, &a->gout_cap, no) || grow(&a->gcache, &a->gcache_cap, cmr_gru_cache_floats(&d)) ||
        grow(&a->gscratch, &a->gscratch_cap, cmr_gru_scratch_floats(&d)))
        return cmr_error_set(err, CMR_ENOMEM, "model: out of memory for the GRU");
    memcpy(a->gx, z, nx * sizeof(float));
    if (h0)
        memcpy(a->gh0, h0, nh * sizeof(float));
    cmr_gru_forward(a->gout, a->gcache, a->gscratch, a->gx, h0 ? a->gh0 : NULL, m->p.gru_w_ih,
                    m->p.gru_w_hh, m->p.gru_b_ih, m->p.gru_b_hh, &d);
    memcpy(c, a->gout, no * sizeof(float));
    a->gB = B;
    a->gS = S;
    a->g_has_h0 = h0 != NULL;
    a->g_train = train;
    return CMR_OK;
}

int cmr_model_gru_backward(struct cmr_model *m, const float *dc, float *dz, struct cmr_error *err)
{
    struct cmr_model_acts *a = m->acts;
    if (!a || !a->g_train)
        return cmr_error_set(err, CMR_ESTATE, "model: GRU backward without a training GRU forward");
    if (!m->grads)
        return cmr_error_set(err, CMR_ESTATE, "model: backward before cmr_model_zero_grad");
    struct cmr_gru_dims d = {a->gB, a->gS, m->cfg.emb, m->cfg.hidden};
    cmr_gru_backward(dz, NULL, m->g.gru_w_ih, m->g.gru_w_hh, m->g.gru_b_ih, m->g.gru_b_hh, a->gscratch,
                     dc, a->gout, a->gcache, a->gx, a->g_has_h0 ? a->gh0 : NULL, m->p.gru_w_ih,
                     m->p.gru_w_hh, &d);
    return CMR_OK;
}

/* ---- losses ---- */

/* rows [r0, r0+B) of x (rows of ld floats), columns [c0, c0+D) -> dst (B, D) */
static void gather(float *dst, const float *x, int ld, int stride, int r0, int B, int c0, int D)
{
    for (int i = 0; i < B; i++)
        memcpy(dst + (size_t)i * D, x + (size_t)(r0 + (size_t)i * stride) * ld + c0, (size_t)D * sizeof(float));
}

/* x rows += src, the inverse of gather */
static void scatter_add(float *x, const float *src, int ld, int stride, int r0, int B, int c0, int D)
{
    for (int i = 0; i < B; i++) {
        float *row = x + (size_t)(r0 + (size_t)i * stride) * ld + c0;
        for (int j = 0; j < D; j++)
            row[j] += src[(size_t)i * D + j];
    }
}

int cmr_model_loss(struct cmr_model *m, const float *x, int B, float tau, int backward,
                   double *loss, int *correct, struct cmr_error *err)
{
    const struct cmr_model_cfg *c = &m->cfg;
    int rc, E = c->emb, ncorrect = 0;
    double L = 0;
    if (B < 2)
        return cmr_error_set(err, CMR_EINVAL, "model: a contrastive batch needs >= 2 examples, got %d", B);
    if (!(tau > 0))
        return cmr_error_set(err, CMR_EINVAL, "model: temperature should be > 0, got %g", tau);
    if (backward && !m->grads)
        return cmr_error_set(err, CMR_ESTATE, "model: loss backward before cmr_model_zero_grad");
    if (acts_get(m))
        return cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
    struct cmr_model_acts *a = m->acts;

    if (c->kind != CMR_MODEL_CPC) {
        int n = 2 * B, D = cmr_model_out_dim(c), nl = c->kind == CMR_MODEL_MULTI ? CMR_MODEL_BLOCKS : 1;
        /* emb (n, D), demb (n, D), per level: a, p, da, dp (B, E), probs (B, B) */
        size_t need = 2 * (size_t)n * D + 4 * (size_t)B * E + (size_t)B * B;
        if (grow(&a->lbuf, &a->lbuf_cap, need))
            return cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
        float *emb = a->lbuf, *demb = emb + (size_t)n * D, *fa = demb + (size_t)n * D,
              *fp = fa + (size_t)B * E, *da = fp + (size_t)B * E, *dp = da + (size_t)B * E,
              *probs = dp + (size_t)B * E;
        if ((rc = cmr_model_forward(m, x, n, 1, emb, err)))
            return rc;
        memset(demb, 0, (size_t)n * D * sizeof(float));
        for (int l = 0; l < nl; l++) {
            gather(fa, emb, D, 1, 0, B, l * E, E);
            gather(fp, emb, D, 1, B, B, l * E, E);
            L += cmr_infonce_forward(probs, fa, fp, B, E, tau) / nl;
            ncorrect += cmr_infonce_correct(probs, B);
            if (backward) {
                memset(da, 0, 2 * (size_t)B * E * sizeof(float));
                cmr_infonce_backward(da, dp, probs, fa, fp, B, E, tau, 1.0f / nl);
                scatter_add(demb, da, D, 1, 0, B, l * E, E);
                scatter_add(demb, dp, D, 1, B, B, l * E, E);
            }
        }
        if (backward && (rc = cmr_model_backward(m, demb, err)))
            return rc;
    } else {
        int S = c->context + c->k, n = B * S, H = c->hidden, T = c->context;
        /* z, dz (n, E); zc, dzc (B, T, E); cs, dc (B, T, H); ct, dct (B, H);
         * pred, dpred, y, dy (B, E); probs (B, B) */
        size_t need = 2 * (size_t)n * E + 2 * (size_t)B * T * E + 2 * (size_t)B * T * H +
                      2 * (size_t)B * H + 4 * (size_t)B * E + (size_t)B * B;
        if (grow(&a->lbuf, &a->lbuf_cap, need))
            return cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
        float *z = a->lbuf, *dz = z + (size_t)n * E, *zc = dz + (size_t)n * E,
              *dzc = zc + (size_t)B * T * E, *cs = dzc + (size_t)B * T * E, *dc = cs + (size_t)B * T * H,
              *ct = dc + (size_t)B * T * H, *dct = ct + (size_t)B * H, *pred = dct + (size_t)B * H,
              *dpred = pred + (size_t)B * E, *y = dpred + (size_t)B * E, *dy = y + (size_t)B * E,
              *probs = dy + (size_t)B * E;
        if ((rc = cmr_model_forward(m, x, n, 1, z, err)))
            return rc;
        /* zc[b, t] = z[b*S + t] */
        for (int b = 0; b < B; b++)
            memcpy(zc + (size_t)b * T * E, z + (size_t)b * S * E, (size_t)T * E * sizeof(float));
        if ((rc = cmr_model_gru_forward(m, zc, NULL, B, T, 1, cs, err)))
            return rc;
        gather(ct, cs, H, T, T - 1, B, 0, H);
        if (backward) {
            memset(dz, 0, (size_t)n * E * sizeof(float));
            memset(dct, 0, (size_t)B * H * sizeof(float));
        }
        for (int k = 0; k < c->k; k++) {
            cmr_linear_forward(pred, ct, m->p.pred_w[k], m->p.pred_b[k], B, H, E);
            gather(y, z, E, S, T + k, B, 0, E);
            L += cmr_infonce_forward(probs, pred, y, B, E, tau);
            ncorrect += cmr_infonce_correct(probs, B);
            if (backward) {
                memset(dpred, 0, (size_t)B * E * sizeof(float));
                memset(dy, 0, (size_t)B * E * sizeof(float));
                cmr_infonce_backward(dpred, dy, probs, pred, y, B, E, tau, 1.0f);
                cmr_linear_backward(dct, m->g.pred_w[k], m->g.pred_b[k], dpred, ct, m->p.pred_w[k], B, H, E);
                scatter_add(dz, dy, E, S, T + k, B, 0, E);
            }
        }
        if (backward) {
            memset(dc, 0, (size_t)B * T * H * sizeof(float));
            for (int b = 0; b < B; b++)
                memcpy(dc + ((size_t)b * T + T - 1) * H, dct + (size_t)b * H, (size_t)H * sizeof(float));
            memset(dzc, 0, (size_t)B * T * E * sizeof(float));
            if ((rc = cmr_model_gru_backward(m, dc, dzc, err)))
                return rc;
            for (int b = 0; b < B; b++) {
                float *dst = dz + (size_t)b * S * E;
                const float *src = dzc + (size_t)b * T * E;
                for (size_t j = 0; j < (size_t)T * E; j++)
                    dst[j] += src[j];
            }
            if ((rc = cmr_model_backward(m, dz, err)))
                return rc;
        }
    }
    if (!isfinite(L))
        return cmr_error_set(err, CMR_ENUMERIC, "model: the loss is not finite (%g)", L);
    if (loss)
        *loss = L;
    if (correct)
        *correct = ncorrect;
    return CMR_OK;
}
