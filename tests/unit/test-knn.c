/* lib/eval/knn: ItemKNN-CBF against the numpy reference of
 * tests/ref/make_refs_eval.py (tests/ref/eval/knn.txt), which reproduces
 * cmr's RNG draw for draw, so seeded runs must agree exactly too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/knn.h"
#include "tap.h"

static FILE *open_ref(const char *name)
{
    const char *src = getenv("CMR_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/ref/eval/%s", src ? src : ".", name);
    FILE *f = fopen(path, "r");
    if (!f)
        skip_all("cannot open %s (set CMR_SRCDIR)", path);
    return f;
}

/* 6 tracks on a line in 2-D: ranks by hand */
static void test_by_hand(void)
{
    /* tracks 0,1,2 queries at angle 0; item 3 at 0 too; outside: 4 (angle 90), 5 (angle 180) */
    float emb[] = {1, 0, 2, 0, 3, 0, 5, 0, 0, 1, -1, 0};
    int start[] = {0, 4}, members[] = {0, 1, 2, 3};
    struct cmr_knn_cfg cfg;
    cfg = cmr_knn_cfg_default();
    cfg.negatives = -1;
    struct cmr_knn_result r;
    struct cmr_error err = {0};
    int rc = cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err);
    ok(rc == CMR_OK && r.items == 1 && r.hits == 1 && r.mpr == 0, "best rank: hr %g mpr %g", r.hr, r.mpr);
    /* move the item to angle 180: both outside tracks score higher or equal -> rank 3 */
    emb[6] = -4;
    rc = cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err);
    ok(rc == CMR_OK && r.mpr == 1.0, "worst rank with a tie counted against the item: mpr %g", r.mpr);
    cfg.k = 2;
    rc = cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err);
    ok(rc == CMR_OK && r.hits == 0, "rank 3 is not a hit at k = 2");
    /* a zero vector as item: cosine 0, track 4 also 0 -> tie -> rank 2 */
    emb[6] = 0;
    cfg.k = 10;
    rc = cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err);
    ok(rc == CMR_OK && r.mpr == 0.5, "zero vector ties with an orthogonal one: mpr %g", r.mpr);
}

static void test_errors(void)
{
    float emb[] = {1, 0, 2, 0, 3, 0, 5, 0, 0, 1, -1, 0};
    int start[] = {0, 4}, members[] = {0, 1, 2, 3};
    struct cmr_knn_cfg cfg;
    cfg = cmr_knn_cfg_default();
    struct cmr_knn_result r;
    struct cmr_error err = {0};
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err) == CMR_EINVAL,
       "100 negatives out of 2 outside tracks: %s", err.msg);
    cfg.negatives = 2;
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err) == CMR_OK && r.items == 1,
       "2 negatives out of 2 work");
    int dup[] = {0, 1, 1, 3};
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, dup, 1, &r, &err) == CMR_EINVAL, "duplicate member: %s",
       err.msg);
    int bad[] = {0, 1, 2, 9};
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, bad, 1, &r, &err) == CMR_EINVAL, "index out of range: %s",
       err.msg);
    int start3[] = {0, 3};
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start3, members, 1, &r, &err) == CMR_EINVAL,
       "only a 3-track playlist: nothing to rank: %s", err.msg);
    cfg.queries = 0;
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err) == CMR_EINVAL, "0 queries: %s",
       err.msg);
    cfg.queries = 3;
    cfg.negatives = 0;
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err) == CMR_EINVAL, "0 negatives: %s",
       err.msg);
    /* issue 11: zero vectors have no cosine; all of them zero reported MPR 1.0 silently */
    {
        float zero[12] = {0};
        cfg.negatives = 2;
        ok(cmr_knn_eval(&cfg, zero, 6, 2, start, members, 1, &r, &err) == CMR_EINVAL &&
               strstr(err.msg, "all 6 vectors are zero"), "every vector zero refused: %s", err.msg);
        float some[12];
        memcpy(some, emb, sizeof some);
        some[8] = some[9] = 0;
        int rc = cmr_knn_eval(&cfg, some, 6, 2, start, members, 1, &r, &err);
        ok(rc == CMR_OK && r.zero_vectors == 1, "one zero vector counted: %lld", (long long)r.zero_vectors);
        ok(cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err) == CMR_OK && r.zero_vectors == 0,
           "no zero vector: 0 counted");
    }
    cfg.negatives = -1;
    emb[3] = NAN;
    ok(cmr_knn_eval(&cfg, emb, 6, 2, start, members, 1, &r, &err) == CMR_ENAN, "NaN: %s", err.msg);
}

static void test_numpy(void)
{
    FILE *f = open_ref("knn.txt");
    char magic[64], what[64];
    int ver, n, d, np;
    if (fscanf(f, "%63s %63s %d %d %d", magic, what, &ver, &n, &d) != 5 || strcmp(what, "knn") ||
        ver != 1) {
        ok(0, "knn.txt: bad header");
        fclose(f);
        return;
    }
    float *emb = malloc(sizeof(float) * (size_t)n * d);
    for (int i = 0; i < n * d; i++)
        if (fscanf(f, "%f", &emb[i]) != 1)
            emb[i] = NAN;
    if (fscanf(f, "%d", &np) != 1)
        np = 0;
    int *start = malloc(sizeof(int) * (size_t)(np + 1)), *members = malloc(sizeof(int) * (size_t)n * np);
    start[0] = 0;
    for (int p = 0; p < np; p++) {
        int m = 0;
        if (fscanf(f, "%d", &m) != 1)
            m = 0;
        for (int i = 0; i < m; i++)
            if (fscanf(f, "%d", &members[start[p] + i]) != 1)
                members[start[p] + i] = -1;
        start[p + 1] = start[p] + m;
    }
    int nc = 0;
    if (fscanf(f, "%d", &nc) != 1)
        nc = 0;
    for (int c = 0; c < nc; c++) {
        int q, neg, sh, seed, pl, sk, items, hits;
        double hr, mpr;
        if (fscanf(f, "%d %d %d %d %d %d %d %d %lf %lf", &q, &neg, &sh, &seed, &pl, &sk, &items,
                   &hits, &hr, &mpr) != 10)
            break;
        struct cmr_knn_cfg cfg;
        cfg = cmr_knn_cfg_default();
        cfg.queries = q;
        cfg.negatives = neg;
        cfg.shuffle = sh;
        cfg.seed = (uint64_t)seed;
        struct cmr_knn_result r;
        struct cmr_error err = {0};
        int rc = cmr_knn_eval(&cfg, emb, n, d, start, members, np, &r, &err);
        ok(rc == CMR_OK && r.playlists == pl && r.skipped == sk && r.items == items && r.hits == hits &&
               r.hr == hr && fabs(r.mpr - mpr) <= 1e-12,
           "queries %d negatives %d shuffle %d seed %d: hr %.10g mpr %.12g (numpy %.10g %.12g), "
           "%lld/%lld items", q, neg, sh, seed, r.hr, r.mpr, hr, mpr, (long long)r.hits,
           (long long)r.items);
    }
    ok(nc == 5, "5 configurations compared");
    free(emb);
    free(start);
    free(members);
    fclose(f);
}

int main(void)
{
    tap_plan_none();
    test_by_hand();
    test_errors();
    test_numpy();
    return tap_done();
}
