/* GRU: fast against naive (forward, caches, BPTT, with and without h0),
 * finite-difference gradients of every input and weight, and the PyTorch
 * fixture tests/ref/nn-gru.bin (torch.nn.GRU, batch_first). */
#include "nn-test.h"

struct gru_buf {
    struct cmr_gru_dims d;
    float *x, *h0, *wi, *wh, *bi, *bh, *y, *cache, *s, *R;
    int use_h0;
};

static void gru_alloc(struct gru_buf *g, struct cmr_rng *r, int B, int T, int IN, int H, int use_h0)
{
    struct cmr_gru_dims d = {B, T, IN, H};
    g->d = d;
    g->use_h0 = use_h0;
    g->x = fbuf((size_t)B * T * IN), g->h0 = fbuf((size_t)B * H);
    g->wi = fbuf((size_t)3 * H * IN), g->wh = fbuf((size_t)3 * H * H);
    g->bi = fbuf(3 * H), g->bh = fbuf(3 * H), g->y = fbuf((size_t)B * T * H);
    g->cache = fbuf(cmr_gru_cache_floats(&d)), g->s = fbuf(cmr_gru_scratch_floats(&d));
    g->R = fbuf((size_t)B * T * H);
    double k = 1.0 / sqrt(H);   /* PyTorch's init range */
    fill_normal(r, g->x, (size_t)B * T * IN, 1);
    fill_normal(r, g->h0, (size_t)B * H, 0.5);
    fill_uniform(r, g->wi, (size_t)3 * H * IN, -k, k);
    fill_uniform(r, g->wh, (size_t)3 * H * H, -k, k);
    fill_uniform(r, g->bi, 3 * H, -k, k);
    fill_uniform(r, g->bh, 3 * H, -k, k);
    fill_normal(r, g->R, (size_t)B * T * H, 1);
}

static void gru_free(struct gru_buf *g)
{
    free(g->x); free(g->h0); free(g->wi); free(g->wh); free(g->bi); free(g->bh); free(g->y);
    free(g->cache); free(g->s); free(g->R);
}

/* sum(out * R) with the GRU evaluated in double throughout (PyTorch's
 * equations, written out once more): the finite differences then measure the
 * maths rather than float rounding. The float kernels equal it to 1e-5 (above). */
static double gru_loss(void *p)
{
    struct gru_buf *g = p;
    const int B = g->d.B, T = g->d.T, IN = g->d.IN, H = g->d.H;
    double L = 0, h[64], hn[64];
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < H; j++)
            h[j] = g->use_h0 ? g->h0[b * H + j] : 0.0;
        for (int t = 0; t < T; t++) {
            const float *x = g->x + ((size_t)b * T + t) * IN;
            for (int j = 0; j < H; j++) {
                double gi[3], gh[3];
                for (int k = 0; k < 3; k++) {
                    int row = k * H + j;
                    gi[k] = g->bi[row];
                    gh[k] = g->bh[row];
                    for (int i = 0; i < IN; i++)
                        gi[k] += (double)g->wi[row * IN + i] * x[i];
                    for (int i = 0; i < H; i++)
                        gh[k] += (double)g->wh[row * H + i] * h[i];
                }
                double r = 1 / (1 + exp(-gi[0] - gh[0])), z = 1 / (1 + exp(-gi[1] - gh[1]));
                double n = tanh(gi[2] + r * gh[2]);
                hn[j] = (1 - z) * n + z * h[j];
            }
            for (int j = 0; j < H; j++) {
                h[j] = hn[j];
                L += h[j] * g->R[((size_t)b * T + t) * H + j];
            }
        }
    }
    return L;
}

struct gru_grads {
    float *dx, *dh0, *dwi, *dwh, *dbi, *dbh;
};

static void grads_alloc(struct gru_grads *q, const struct cmr_gru_dims *d, struct cmr_rng *r)
{
    size_t nx = (size_t)d->B * d->T * d->IN, nh = (size_t)d->B * d->H, G = 3 * (size_t)d->H;
    q->dx = fbuf(nx), q->dh0 = fbuf(nh), q->dwi = fbuf(G * d->IN), q->dwh = fbuf(G * d->H);
    q->dbi = fbuf(G), q->dbh = fbuf(G);
    if (r) {   /* random starting values: backward must add to them */
        fill_normal(r, q->dx, nx, 1);
        fill_normal(r, q->dh0, nh, 1);
        fill_normal(r, q->dwi, G * d->IN, 1);
        fill_normal(r, q->dwh, G * d->H, 1);
        fill_normal(r, q->dbi, G, 1);
        fill_normal(r, q->dbh, G, 1);
    }
}

static void grads_free(struct gru_grads *q)
{
    free(q->dx); free(q->dh0); free(q->dwi); free(q->dwh); free(q->dbi); free(q->dbh);
}

static void test_against_naive(struct cmr_rng *r, int B, int T, int IN, int H, int use_h0)
{
    char pre[80], label[160];
    struct gru_buf g;
    gru_alloc(&g, r, B, T, IN, H, use_h0);
    const struct cmr_gru_dims *d = &g.d;
    size_t ny = (size_t)B * T * H, nc = cmr_gru_cache_floats(d), G = 3 * (size_t)H;
    float *y2 = fbuf(ny), *c2 = fbuf(nc);
    const float *h0 = use_h0 ? g.h0 : NULL;
    snprintf(pre, sizeof pre, "gru B%d T%d %d->%d%s", B, T, IN, H, use_h0 ? " with h0" : "");
    cmr_gru_forward(g.y, g.cache, g.s, g.x, h0, g.wi, g.wh, g.bi, g.bh, d);
    cmr_gru_forward_naive(y2, c2, g.x, h0, g.wi, g.wh, g.bi, g.bh, d);
    snprintf(label, sizeof label, "%s forward = naive", pre);
    check_close(label, g.y, y2, ny, 1e-5, 1e-5);
    snprintf(label, sizeof label, "%s gate cache = naive", pre);
    check_close(label, g.cache, c2, nc, 1e-5, 1e-5);
    struct gru_grads a, b;
    grads_alloc(&a, d, r);
    grads_alloc(&b, d, NULL);
    memcpy(b.dx, a.dx, sizeof(float) * (size_t)B * T * IN);
    memcpy(b.dh0, a.dh0, sizeof(float) * (size_t)B * H);
    memcpy(b.dwi, a.dwi, sizeof(float) * G * IN);
    memcpy(b.dwh, a.dwh, sizeof(float) * G * H);
    memcpy(b.dbi, a.dbi, sizeof(float) * G);
    memcpy(b.dbh, a.dbh, sizeof(float) * G);
    cmr_gru_backward(a.dx, use_h0 ? a.dh0 : NULL, a.dwi, a.dwh, a.dbi, a.dbh, g.s, g.R, g.y, g.cache,
                     g.x, h0, g.wi, g.wh, d);
    cmr_gru_backward_naive(b.dx, use_h0 ? b.dh0 : NULL, b.dwi, b.dwh, b.dbi, b.dbh, g.R, g.y, g.cache,
                           g.x, h0, g.wi, g.wh, d);
    static const char *names[6] = {"dinp", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"};
    float *fa[6] = {a.dx, a.dh0, a.dwi, a.dwh, a.dbi, a.dbh}, *fb[6] = {b.dx, b.dh0, b.dwi, b.dwh, b.dbi, b.dbh};
    size_t ns[6] = {(size_t)B * T * IN, (size_t)B * H, G * IN, G * H, G, G};
    for (int k = 0; k < 6; k++) {
        snprintf(label, sizeof label, "%s backward %s += naive%s", pre, names[k],
                 k == 1 && !use_h0 ? " (NULL: untouched)" : "");
        check_close(label, fa[k], fb[k], ns[k], 1e-5, 1e-4);
    }
    grads_free(&a);
    grads_free(&b);
    free(y2);
    free(c2);
    gru_free(&g);
}

static void test_gradcheck(struct cmr_rng *r)
{
    struct gru_buf g;
    gru_alloc(&g, r, 2, 4, 3, 5, 1);
    struct gru_grads q;
    grads_alloc(&q, &g.d, NULL);
    cmr_gru_forward(g.y, g.cache, g.s, g.x, g.h0, g.wi, g.wh, g.bi, g.bh, &g.d);
    cmr_gru_backward(q.dx, q.dh0, q.dwi, q.dwh, q.dbi, q.dbh, g.s, g.R, g.y, g.cache, g.x, g.h0,
                     g.wi, g.wh, &g.d);
    size_t G = 15;
    gradcheck("gru dinp", gru_loss, &g, g.x, q.dx, 2 * 4 * 3, NULL);
    gradcheck("gru dh0", gru_loss, &g, g.h0, q.dh0, 2 * 5, NULL);
    gradcheck("gru dw_ih", gru_loss, &g, g.wi, q.dwi, G * 3, NULL);
    gradcheck("gru dw_hh", gru_loss, &g, g.wh, q.dwh, G * 5, NULL);
    gradcheck("gru db_ih", gru_loss, &g, g.bi, q.dbi, G, NULL);
    gradcheck("gru db_hh", gru_loss, &g, g.bh, q.dbh, G, NULL);
    grads_free(&q);
    gru_free(&g);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-gru.bin");
    const int B = 3, T = 4, IN = 5, H = 6, G = 18;
    struct cmr_gru_dims d = {B, T, IN, H};
    float *wi = ref_get(&rf, "w_ih", G * IN), *wh = ref_get(&rf, "w_hh", G * H);
    float *bi = ref_get(&rf, "b_ih", G), *bh = ref_get(&rf, "b_hh", G);
    float *y = fbuf(B * T * H), *cache = fbuf(cmr_gru_cache_floats(&d)), *s = fbuf(cmr_gru_scratch_floats(&d));
    char name[32], label[96];
    for (int k = 0; k < 2; k++) {
        const char *t = k ? "h" : "z";
#define REF(s_, cnt) (snprintf(name, sizeof name, "%s.%s", t, s_), ref_get(&rf, name, cnt))
        float *x = REF("x", B * T * IN), *h0 = k ? REF("h0", B * H) : NULL;
        struct gru_grads q;
        grads_alloc(&q, &d, NULL);
        cmr_gru_forward(y, cache, s, x, h0, wi, wh, bi, bh, &d);
        snprintf(label, sizeof label, "torch GRU(5,6) forward, h0 %s", k ? "given" : "zero");
        check_close(label, y, REF("y", B * T * H), B * T * H, 1e-6, 1e-5);
        cmr_gru_backward(q.dx, k ? q.dh0 : NULL, q.dwi, q.dwh, q.dbi, q.dbh, s, REF("dy", B * T * H),
                         y, cache, x, h0, wi, wh, &d);
        static const char *names[6] = {"dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"};
        float *got[6] = {q.dx, q.dh0, q.dwi, q.dwh, q.dbi, q.dbh};
        int ns[6] = {B * T * IN, B * H, G * IN, G * H, G, G};
        for (int j = 0; j < 6; j++) {
            if (j == 1 && !k)
                continue;
            snprintf(label, sizeof label, "torch GRU backward %s, h0 %s", names[j], k ? "given" : "zero");
            check_close(label, got[j], REF(names[j], ns[j]), ns[j], 1e-6, 1e-5);
        }
        grads_free(&q);
#undef REF
    }
    free(y);
    free(cache);
    free(s);
    ref_free(&rf);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 9);
    test_against_naive(&r, 1, 1, 1, 1, 0);
    test_against_naive(&r, 3, 4, 5, 6, 0);
    test_against_naive(&r, 2, 7, 3, 9, 1);
    test_against_naive(&r, 16, 4, 128, 256, 0);   /* MelCPC's shape */
    test_gradcheck(&r);
    test_torch();
    gc_summary();
    return tap_done();
}
