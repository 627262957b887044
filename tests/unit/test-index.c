/* lib/index: the flat cosine index returns exactly the ranking of cmr-knn's
 * scoring (cmr_knn_normalise + a double dot product), ties by catalogue
 * position; l2 the exact distance ranking; save/load round trips; the
 * approximate types find most true neighbours; bad input is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "eval/knn.h"
#include "index/faiss_shim.h"
#include "index/index.h"
#include "tap.h"
#include "util/rng.h"

struct ref {
    double s;
    int64_t pos;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? 1 : -1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* clustered vectors: 8 centres, plus noise; rows 5 and 6 duplicate row 4
 * (exact ties), row 7 is row 4 scaled (a cosine tie) */
static float *make_data(int n, int d, uint64_t seed)
{
    struct cmr_rng r;
    cmr_rng_seed(&r, seed);
    float *c = malloc(sizeof(float) * 8 * d), *X = malloc(sizeof(float) * (size_t)n * d);
    for (int i = 0; i < 8 * d; i++)
        c[i] = (float)(cmr_rng_uniform(&r) * 2 - 1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            X[(size_t)i * d + j] = c[(i % 8) * d + j] + 0.3f * (float)(cmr_rng_uniform(&r) * 2 - 1);
    memcpy(X + 5 * d, X + 4 * d, sizeof(float) * d);
    memcpy(X + 6 * d, X + 4 * d, sizeof(float) * d);
    for (int j = 0; j < d; j++)
        X[7 * d + j] = 2 * X[4 * d + j];
    free(c);
    return X;
}

static char **make_ids(int n)
{
    char **t = malloc(sizeof(char *) * n);
    for (int i = 0; i < n; i++) {
        t[i] = malloc(32);
        snprintf(t[i], 32, "track%04d", i);
    }
    return t;
}

/* cmr-knn's cosine ranking of every catalogue row for query row q */
static void knn_ranking(const float *X, int n, int d, const float *q, struct ref *out)
{
    double *u = malloc(sizeof(double) * (size_t)n * d), *uq = malloc(sizeof(double) * d);
    cmr_knn_normalise(X, n, d, u);
    cmr_knn_normalise(q, 1, d, uq);
    for (int c = 0; c < n; c++) {
        double s = 0;
        for (int j = 0; j < d; j++)
            s += u[(size_t)c * d + j] * uq[j];
        out[c].s = s;
        out[c].pos = c;
    }
    qsort(out, n, sizeof *out, cmp_ref);
    free(u);
    free(uq);
}

static void test_flat_cosine(void)
{
    int n = 600, d = 48, k = 25;
    float *X = make_data(n, d, 1);
    char **ids = make_ids(n);
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    struct cmr_error err = {0};
    struct cmr_index *ix = cmr_index_build(&cfg, n, d, X, (const char *const *)ids, NULL, NULL, "summary", &err);
    ok(ix != NULL, "flat cosine index built (%s)", err.msg);
    if (!ix)
        return;
    int64_t *pos = malloc(sizeof(int64_t) * k);
    float *score = malloc(sizeof(float) * k);
    struct ref *ref = malloc(sizeof(struct ref) * n);
    int same = 1, near = 1;
    for (int q = 0; q < n; q++) {
        knn_ranking(X, n, d, X + (size_t)q * d, ref);
        if (cmr_index_search(ix, 1, X + (size_t)q * d, k, NULL, pos, score, NULL, &err))
            same = 0;
        for (int r = 0; r < k; r++) {
            same &= pos[r] == ref[r].pos;
            near &= fabs(score[r] - ref[r].s) < 1e-6;
        }
        if (!same) {
            diag("query %d: first difference, index %lld vs knn %lld", q, (long long)pos[0], (long long)ref[0].pos);
            break;
        }
    }
    ok(same, "flat cosine: every query's top %d is cmr-knn's ranking (ties by position)", k);
    ok(near, "flat cosine: the scores are cmr-knn's cosines");
    /* the duplicates of row 4 (4, 5, 6, 7) tie: catalogue order */
    cmr_index_search(ix, 1, X + 4 * d, 4, NULL, pos, score, NULL, &err);
    ok(pos[0] == 4 && pos[1] == 5 && pos[2] == 6 && pos[3] == 7, "ties in catalogue order: %lld %lld %lld %lld",
       (long long)pos[0], (long long)pos[1], (long long)pos[2], (long long)pos[3]);
    int64_t ex = 5;
    cmr_index_search(ix, 1, X + 5 * d, 3, &ex, pos, score, NULL, &err);
    ok(pos[0] == 4 && pos[1] == 6 && pos[2] == 7, "exclude leaves the query's own track out");

    /* a whole-catalogue k, and k beyond it */
    int64_t *all = malloc(sizeof(int64_t) * n);
    float *alls = malloc(sizeof(float) * n);
    knn_ranking(X, n, d, X + 9 * d, ref);
    ok(cmr_index_search(ix, 1, X + 9 * d, n, NULL, all, alls, NULL, &err) == CMR_OK, "k = n");
    int whole = 1;
    for (int r = 0; r < n; r++)
        whole &= all[r] == ref[r].pos;
    ok(whole, "k = n: the whole ranking is cmr-knn's");
    ok(cmr_index_search(ix, 1, X, n + 1, NULL, all, alls, NULL, &err) == CMR_EINVAL, "k > n refused: %s",
       err.msg);
    ok(cmr_index_search(ix, 1, X, n, &ex, all, alls, NULL, &err) == CMR_EINVAL,
       "k = n with the query's own track excluded refused");

    /* save, load: the same answers, ids and metadata */
    char path[] = "/tmp/cmr-test-index.XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ok(cmr_index_save(ix, path, &err) == CMR_OK, "saved (%s)", err.msg);
    struct cmr_index *iy = cmr_index_load(path, &err);
    ok(iy != NULL && cmr_index_size(iy) == n && cmr_index_dim(iy) == d, "loaded (%s)", err.msg);
    if (iy) {
        int64_t *p2 = malloc(sizeof(int64_t) * k);
        float *s2 = malloc(sizeof(float) * k);
        cmr_index_search(ix, 1, X + 11 * d, k, NULL, pos, score, NULL, &err);
        cmr_index_search(iy, 1, X + 11 * d, k, NULL, p2, s2, NULL, &err);
        ok(!memcmp(pos, p2, sizeof(int64_t) * k) && !memcmp(score, s2, sizeof(float) * k),
           "the loaded index answers the same");
        ok(!strcmp(cmr_index_track(iy, 17), "track0017") && cmr_index_find(iy, "track0123") == 123,
           "track ids kept");
        free(p2);
        free(s2);
        cmr_index_free(iy);
    }
    /* adding: a known id is refused and leaves the index as it was */
    const char *dup[1] = {"track0003"};
    ok(cmr_index_add(ix, 1, X, dup, NULL, NULL, &err) == CMR_EINVAL && cmr_index_size(ix) == n,
       "a track already in the index is refused: %s", err.msg);
    unlink(path);
    free(all);
    free(alls);
    free(ref);
    free(pos);
    free(score);
    cmr_index_free(ix);
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(X);
}

static void test_l2(void)
{
    int n = 300, d = 16, k = 10;
    float *X = make_data(n, d, 2);
    char **ids = make_ids(n);
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    cfg.metric = CMR_METRIC_L2;
    struct cmr_error err = {0};
    struct cmr_index *ix = cmr_index_build(&cfg, n, d, X, (const char *const *)ids, NULL, NULL, "summary", &err);
    int64_t pos[10];
    float score[10];
    struct ref *ref = malloc(sizeof(struct ref) * n);
    int same = 1;
    for (int q = 0; q < n && ix; q++) {
        for (int c = 0; c < n; c++) {
            double s = 0;
            for (int j = 0; j < d; j++) {
                double t = (double)X[(size_t)c * d + j] - X[(size_t)q * d + j];
                s += t * t;
            }
            ref[c].s = -s;
            ref[c].pos = c;
        }
        qsort(ref, n, sizeof *ref, cmp_ref);
        cmr_index_search(ix, 1, X + (size_t)q * d, k, NULL, pos, score, NULL, &err);
        for (int r = 0; r < k; r++)
            same &= pos[r] == ref[r].pos && fabs(score[r] + ref[r].s) <= 1e-5 * (1 - ref[r].s);
    }
    ok(ix && same, "flat l2: the exact distance ranking and distances");
    cmr_index_free(ix);
    free(ref);
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(X);
}

/* the true neighbours (flat's top 10) that ix finds too, over nq queries
 * (every 39th row of X) */
static int64_t recall_hits(struct cmr_index *flat, struct cmr_index *ix, const float *X, int d, int nq)
{
    struct cmr_error err = {0};
    int64_t p1[10], p2[10], hits = 0;
    float s1[10], s2[10];
    for (int q = 0; q < nq; q++) {
        cmr_index_search(flat, 1, X + (size_t)q * 39 * d, 10, NULL, p1, s1, NULL, &err);
        cmr_index_search(ix, 1, X + (size_t)q * 39 * d, 10, NULL, p2, s2, NULL, &err);
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                hits += p1[a] == p2[b];
    }
    return hits;
}

/* 2000 clustered vectors of 32 values, their ids, and their flat index */
struct approx_data {
    int n, d;
    float *X;
    char **ids;
    struct cmr_index *flat;
};

static void approx_data_make(struct approx_data *a)
{
    struct cmr_index_cfg cfg;
    struct cmr_error err = {0};
    a->n = 2000;
    a->d = 32;
    a->X = make_data(a->n, a->d, 3);
    a->ids = make_ids(a->n);
    cmr_index_cfg_default(&cfg);
    a->flat = cmr_index_build(&cfg, a->n, a->d, a->X, (const char *const *)a->ids, NULL, NULL, "summary", &err);
}

static struct cmr_index *approx_build(const struct approx_data *a, const struct cmr_index_cfg *cfg)
{
    struct cmr_error err = {0};
    struct cmr_index *ix = cmr_index_build(cfg, a->n, a->d, a->X, (const char *const *)a->ids, NULL, NULL,
                                           "summary", &err);
    ok(ix != NULL, "%s index built (%s)", cmr_index_type_name(cfg->type), err.msg);
    return ix;
}

static void approx_data_free(struct approx_data *a)
{
    cmr_index_free(a->flat);
    for (int i = 0; i < a->n; i++)
        free(a->ids[i]);
    free(a->ids);
    free(a->X);
}

/* approximate types: recall@10 against flat on clustered data */
static void test_approx(int type)
{
    struct approx_data a;
    approx_data_make(&a);
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    cfg.type = type;
    cfg.nprobe = 8;
    cfg.nlist = 32;
    cfg.ef_construction = 40;
    struct cmr_index *ix = approx_build(&a, &cfg);
    if (ix && a.flat) {
        double recall = recall_hits(a.flat, ix, a.X, a.d, 50) / 500.0;
        ok(recall >= (type == CMR_INDEX_HNSW ? 0.9 : 0.4), "%s: recall@10 %.3f", cmr_index_type_name(type),
           recall);
    }
    cmr_index_free(ix);
    approx_data_free(&a);
}

/* ivfpq re-ranked by 8-bit codes (--refine): finds more true neighbours than
 * the PQ codes alone, keeps its factor through save and load (the same
 * answers), and a version-1 file (no refine field) still loads */
static void test_refine(void)
{
    struct approx_data a;
    approx_data_make(&a);
    int nq = 50, d = a.d;
    const float *X = a.X;
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    struct cmr_error err = {0};
    cfg.type = CMR_INDEX_IVFPQ;
    cfg.nlist = 32;
    cfg.nprobe = 8;
    cfg.pq_m = 4;
    struct cmr_index *pq = approx_build(&a, &cfg), *flat = a.flat;
    cfg.refine = 8;
    struct cmr_index *rf = approx_build(&a, &cfg);
    if (!flat || !pq || !rf)
        return;
    ok(!strcmp(cmr_index_factory(rf), "IVF32,PQ4np,Refine(SQ8)"), "factory %s", cmr_index_factory(rf));
    double r0 = recall_hits(flat, pq, X, d, nq) / (nq * 10.0), r1 = recall_hits(flat, rf, X, d, nq) / (nq * 10.0);
    ok(r1 >= 0.9 && r1 > r0, "refine 8: recall@10 %.3f, PQ codes alone %.3f", r1, r0);
    ok(cmr_index_set_search(pq, 0, 0, 4, &err) == CMR_EINVAL, "refine on an index built without it: %s", err.msg);
    /* save, load: the same factor, the same answers */
    char path[] = "/tmp/cmr-test-index.XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ok(cmr_index_save(rf, path, &err) == CMR_OK, "saved");
    struct cmr_index *back = cmr_index_load(path, &err);
    ok(back && cmr_index_config(back)->refine == 8, "loaded with refine %d", back ? cmr_index_config(back)->refine : -1);
    int64_t p1[10], p2[10];
    float s1[10], s2[10];
    int same = back != NULL;
    for (int q = 0; back && q < nq; q++) {
        cmr_index_search(rf, 1, X + (size_t)q * 7 * d, 10, NULL, p1, s1, NULL, &err);
        cmr_index_search(back, 1, X + (size_t)q * 7 * d, 10, NULL, p2, s2, NULL, &err);
        same &= !memcmp(p1, p2, sizeof p1) && !memcmp(s1, s2, sizeof s1);
    }
    ok(same, "the loaded index gives the same answers");
    cmr_index_free(back);
    /* a version-1 file: the plain ivfpq index's bytes with version 1 and
     * their CRC-32 redone */
    ok(cmr_index_save(pq, path, &err) == CMR_OK, "saved without refine");
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)len);
    int got = fread(b, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    ok(got && b[4] == 2, "version 2 written");
    b[4] = 1;
    uLong crc = crc32(0, b, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        b[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    struct cmr_index *v1 = cmr_index_load_mem(b, (size_t)len, "v1", &err);
    ok(v1 && cmr_index_config(v1)->refine == 0, "a version-1 file loads (%s)", v1 ? "ok" : err.msg);
    b[4] = 3;
    crc = crc32(0, b, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        b[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    struct cmr_index *v3 = cmr_index_load_mem(b, (size_t)len, "v3", &err);
    ok(!v3 && err.code == CMR_EVERSION, "version 3 is refused: %s", err.msg);
    cmr_index_free(v1);
    free(b);
    unlink(path);
    cmr_index_free(rf);
    cmr_index_free(pq);
    approx_data_free(&a);
}

static void test_bad(void)
{
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    struct cmr_error err = {0};
    float X[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *ids[2] = {"a", "b"};
    ok(!cmr_index_build(&cfg, 0, 4, X, ids, NULL, NULL, "summary", &err) && err.code == CMR_EINVAL,
       "an empty catalogue is refused: %s", err.msg);
    X[5] = NAN;
    ok(!cmr_index_build(&cfg, 2, 4, X, ids, NULL, NULL, "summary", &err) && err.code == CMR_ENAN,
       "a NaN is refused: %s", err.msg);
    X[5] = 0;
    X[4] = X[6] = X[7] = 0;
    struct cmr_index *iz0 = cmr_index_build(&cfg, 2, 4, X, ids, NULL, NULL, "summary", &err);
    int64_t p0[2];
    float s0[2];
    ok(iz0 && cmr_index_search(iz0, 1, X, 2, NULL, p0, s0, NULL, &err) == CMR_OK && p0[1] == 1 && s0[1] == 0,
       "cosine: an all-zero vector scores 0, as in cmr-knn");
    cmr_index_free(iz0);
    cfg.type = CMR_INDEX_IVFPQ;
    X[4] = 1;
    ok(!cmr_index_build(&cfg, 2, 4, X, ids, NULL, NULL, "summary", &err) && err.code == CMR_EINVAL,
       "ivfpq with too few vectors to train is refused: %s", err.msg);
    const char *same[2] = {"a", "a"};
    cfg.type = CMR_INDEX_FLAT;
    ok(!cmr_index_build(&cfg, 2, 4, X, same, NULL, NULL, "summary", &err) && err.code == CMR_EINVAL,
       "a track id twice is refused: %s", err.msg);
    /* corrupt files: every truncation, and flipped bytes */
    struct cmr_index *ix = cmr_index_build(&cfg, 2, 4, X, ids, NULL, NULL, "summary", &err);
    char path[] = "/tmp/cmr-test-index.XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cmr_index_save(ix, path, &err);
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    int refused = 1;
    for (size_t l = 0; l < len; l++) {
        struct cmr_index *iy = cmr_index_load_mem(buf, l, "x", &err);
        refused &= !iy && err.code == CMR_EFORMAT;
        cmr_index_free(iy);
    }
    ok(refused, "every truncation of a %zu-byte index is refused (CMR_EFORMAT)", len);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x40;
        struct cmr_index *iy = cmr_index_load_mem(buf, len, "x", &err);
        refused &= !iy && (err.code == CMR_EFORMAT || err.code == CMR_EVERSION);
        cmr_index_free(iy);
        buf[i] ^= 0x40;
    }
    ok(refused, "every flipped byte is refused");
    struct cmr_index *iz = cmr_index_load_mem(buf, len, "x", &err);
    ok(iz != NULL, "the intact bytes load");
    cmr_index_free(iz);
    cmr_index_free(ix);
    unlink(path);
}

int main(void)
{
    tap_plan_none();
    cmr_faiss_threads(1); /* a loaded machine: no OpenMP spinning */
    test_flat_cosine();
    test_l2();
    test_approx(CMR_INDEX_HNSW);
    test_approx(CMR_INDEX_IVFPQ);
    test_refine();
    test_bad();
    return tap_done();
}
