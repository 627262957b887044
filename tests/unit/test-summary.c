/* lib/eval/summary: mean and population std per track against numpy
 * (tests/ref/eval/summary.txt, written by tests/ref/make_refs_eval.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/summary.h"
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

static void test_bad_params(void)
{
    struct cmr_error err = {0};
    ok(cmr_summary_new(0, &err) == NULL && err.code == CMR_EINVAL, "dim 0 is refused: %s", err.msg);
    ok(cmr_summary_new(-3, NULL) == NULL, "negative dim is refused without an error struct");
    cmr_summary_free(NULL);
    struct cmr_summary *s = cmr_summary_new(2, &err);
    float out[4];
    ok(cmr_summary_get(s, out, &err) == CMR_ESTATE, "no rows: CMR_ESTATE (%s)", err.msg);
    float bad[4] = {1, 2, NAN, 4};
    ok(cmr_summary_add(s, bad, 2, &err) == CMR_ENAN && cmr_summary_count(s) == 0,
       "a NaN is refused and nothing is added: %s", err.msg);
    float inf[2] = {INFINITY, 0};
    ok(cmr_summary_add(s, inf, 1, &err) == CMR_ENAN, "an infinity is refused");
    cmr_summary_free(s);
}

static void test_simple(void)
{
    struct cmr_summary *s = cmr_summary_new(2, NULL);
    float rows[] = {1, 10, 2, 10, 3, 10, 4, 10};
    cmr_summary_add(s, rows, 4, NULL);
    float out[4], want[4] = {2.5f, 10, (float)sqrt(1.25), 0};
    cmr_summary_get(s, out, NULL);
    check_close("[1 2 3 4], [10 10 10 10]", out, want, 4, 1e-7, 1e-6);
    cmr_summary_reset(s);
    float one[2] = {-7, 3};
    cmr_summary_add(s, one, 1, NULL);
    float want1[4] = {-7, 3, 0, 0};
    cmr_summary_get(s, out, NULL);
    check_close("one row: std 0", out, want1, 4, 0, 0);
    /* a large offset: Welford keeps the small spread */
    cmr_summary_reset(s);
    float big[] = {1e6f + 1, 0, 1e6f + 3, 0};
    cmr_summary_add(s, big, 2, NULL);
    cmr_summary_get(s, out, NULL);
    ok(fabsf(out[2] - 1.0f) < 1e-6f, "offset 1e6: std %g, want 1", out[2]);
    cmr_summary_free(s);
}

static void test_numpy(void)
{
    FILE *f = open_ref("summary.txt");
    char magic[64], what[64];
    int ver;
    if (fscanf(f, "%63s %63s %d", magic, what, &ver) != 3 || strcmp(what, "summary") || ver != 1) {
        ok(0, "summary.txt: bad header");
        fclose(f);
        return;
    }
    char tid[64];
    int n, d;
    while (fscanf(f, "%63s %d %d", tid, &n, &d) == 3) {
        float *rows = malloc(sizeof(float) * (size_t)n * d), *want = malloc(sizeof(float) * 2 * d);
        float *got = malloc(sizeof(float) * 2 * d);
        for (int i = 0; i < n * d; i++)
            if (fscanf(f, "%f", &rows[i]) != 1)
                rows[i] = NAN;
        for (int i = 0; i < 2 * d; i++)
            if (fscanf(f, "%f", &want[i]) != 1)
                want[i] = NAN;
        struct cmr_summary *s = cmr_summary_new(d, NULL);
        /* feed in uneven chunks, as frames arrive */
        for (int i = 0; i < n;) {
            int c = i % 2 ? 2 : 1;
            if (c > n - i)
                c = n - i;
            cmr_summary_add(s, rows + (size_t)i * d, c, NULL);
            i += c;
        }
        cmr_summary_get(s, got, NULL);
        char label[128];
        snprintf(label, sizeof label, "track %s (%d rows of %d) vs numpy mean/std(ddof=0)", tid, n, d);
        check_close(label, got, want, (size_t)2 * d, 1e-5, 1e-5);
        cmr_summary_free(s);
        free(rows);
        free(want);
        free(got);
    }
    fclose(f);
}

int main(void)
{
    tap_plan_none();
    test_bad_params();
    test_simple();
    test_numpy();
    return tap_done();
}
