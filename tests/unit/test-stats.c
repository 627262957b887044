/* lib/dsp/stats: accumulation against a double two-pass reference, merging,
 * the stats file (round trip, atomic write, malformed files). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "dsp/stats.h"
#include "util/rng.h"

static char dir[] = "/tmp/cmr-test-stats.XXXXXX";

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_accumulate(void)
{
    size_t n = 100000;
    float *x = malloc(sizeof(float) * n);
    struct cmr_rng r;
    cmr_rng_seed(&r, 3);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.15 + 0.2 * cmr_rng_normal(&r) + 1000.0); /* a large offset */
    double sum = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / n;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mean) * (x[i] - mean);
    double std = sqrt(ss / n);

    struct cmr_stats a, b, whole;
    cmr_stats_init(&whole);
    cmr_stats_add(&whole, x, n);
    ok(whole.count == n && fabs(cmr_stats_mean(&whole) - mean) < 1e-9 && fabs(cmr_stats_std(&whole) - std) < 1e-9,
       "mean %.9f std %.9f match the two-pass reference", cmr_stats_mean(&whole), cmr_stats_std(&whole));
    /* uneven chunks and merging give the same */
    cmr_stats_init(&a);
    cmr_stats_init(&b);
    for (size_t pos = 0, c = 1; pos < n; pos += c, c = c * 3 + 1) {
        if (c > n - pos)
            c = n - pos;
        cmr_stats_add(pos < n / 2 ? &a : &b, x + pos, c);
    }
    cmr_stats_merge(&a, &b);
    ok(a.count == n && fabs(a.mean - mean) < 1e-9 && fabs(cmr_stats_std(&a) - std) < 1e-9,
       "chunked and merged accumulation agrees");
    x[17] = NAN;
    ok(cmr_stats_add(&a, x, n) == CMR_ENAN && a.count == n, "a NaN is refused, nothing added");
    cmr_stats_init(&a);
    ok(cmr_stats_std(&a) == 0 && cmr_stats_mean(&a) == 0, "empty: mean 0, std 0");
    float y[3] = { 1, 2, 3 };
    cmr_stats_apply(y, 3, 2.0, 0.5);
    ok(y[0] == -2 && y[1] == 0 && y[2] == 2, "apply: (x - mean) / std");
    free(x);
}

static void test_file(void)
{
    char path[128], other[128];
    struct cmr_error err;
    struct cmr_stats s;
    struct cmr_stats_file f;
    float v[5] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.7f };
    cmr_stats_init(&s);
    cmr_stats_add(&s, v, 5);
    snprintf(path, sizeof path, "%s/mel.stats", dir);
    ok(cmr_stats_write(path, &s, "mel", "sr=16000 n_mels=96", &err) == CMR_OK, "write %s", path);
    ok(cmr_stats_read(path, &f, &err) == CMR_OK && f.mean == s.mean && f.std == cmr_stats_std(&s)
       && f.count == 5 && !strcmp(f.kind, "mel") && !strcmp(f.config, "sr=16000 n_mels=96"),
       "read back exactly: mean %.17g std %.17g", f.mean, f.std);
    /* no temporary left behind */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    ok(system(cmd) == 0, "only the stats file in the directory after the atomic write");

    snprintf(other, sizeof other, "%s/hand.stats", dir);
    write_text(other, "CMRSTATS 1\n# FMA-small, from the reference code\nmean 0.1326\nstd 0.1844\nfuture 3\n");
    ok(cmr_stats_read(other, &f, &err) == CMR_OK && f.mean == 0.1326 && f.std == 0.1844 && !f.config[0]
       && f.count == 0, "a hand-written file with comments and an unknown key");

    static const struct { const char *text; int code; const char *what; } bad[] = {
        { "", CMR_EFORMAT, "empty file" },
        { "CMRSTAT 1\nmean 0\nstd 1\n", CMR_EFORMAT, "bad magic" },
        { "CMRSTATS x\nmean 0\nstd 1\n", CMR_EFORMAT, "bad version" },
        { "CMRSTATS 2\nmean 0\nstd 1\n", CMR_EVERSION, "newer version" },
        { "CMRSTATS 1\nmean 0\n", CMR_EFORMAT, "no std" },
        { "CMRSTATS 1\nstd 1\n", CMR_EFORMAT, "no mean" },
        { "CMRSTATS 1\nmean 0\nstd 0\n", CMR_EFORMAT, "std 0" },
        { "CMRSTATS 1\nmean 0\nstd -1\n", CMR_EFORMAT, "negative std" },
        { "CMRSTATS 1\nmean nan\nstd 1\n", CMR_EFORMAT, "NaN mean" },
        { "CMRSTATS 1\nmean 0.1x\nstd 1\n", CMR_EFORMAT, "trailing garbage" },
        { "CMRSTATS 1\nmean\nstd 1\n", CMR_EFORMAT, "key without value" },
        { "CMRSTATS 1\nmean 0\nstd 1\ncount -3\n", CMR_EFORMAT, "negative count" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(other, bad[i].text);
        memset(&err, 0, sizeof err);
        int rc = cmr_stats_read(other, &f, &err);
        ok(rc == bad[i].code && !strncmp(err.msg, "stats: ", 7), "%s: %s", bad[i].what, err.msg);
    }
    snprintf(other, sizeof other, "%s/missing", dir);
    ok(cmr_stats_read(other, &f, &err) == CMR_EIO, "missing file: %s", err.msg);
    snprintf(other, sizeof other, "%s/no/such/dir/x.stats", dir);
    ok(cmr_stats_write(other, &s, NULL, NULL, &err) == CMR_EIO, "unwritable path: %s", err.msg);
    cmr_stats_init(&s);
    ok(cmr_stats_write(path, &s, NULL, NULL, &err) == CMR_EINVAL, "no values: %s", err.msg);
    float c[3] = { 2, 2, 2 };
    cmr_stats_add(&s, c, 3);
    ok(cmr_stats_write(path, &s, NULL, NULL, &err) == CMR_EINVAL, "zero std: %s", err.msg);
    cmr_stats_init(&s);
    cmr_stats_add(&s, v, 5);
    ok(cmr_stats_write(path, &s, "a\nb", NULL, &err) == CMR_EINVAL, "a two-line kind is refused: %s", err.msg);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
}

int main(void)
{
    tap_plan_none();
    if (!mkdtemp(dir))
        skip_all("cannot create a temporary directory");
    test_accumulate();
    test_file();
    return tap_done();
}
