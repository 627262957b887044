/* tests for lib/stream/segmenter.h: every unit checked against a direct
 * cut of the whole run, over hops shorter, equal to and longer than a
 * segment, contexts, padding, random chunkings (rows one at a time, empty
 * chunks), offsets not at 0, discontinuities, width changes, drain and
 * reset, and the tags each unit carries. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/segmenter.h"
#include "tap.h"

#define W 3 /* features per row */

/* row r, feature f of the test signal */
static float val(int64_t r, int f) { return (float)(r * 10 + f + 1); }

static void fill(float *x, int64_t r0, int64_t n)
{
    for (int64_t r = 0; r < n; r++)
        for (int f = 0; f < W; f++)
            x[r * W + f] = val(r0 + r, f);
}

/* the units a run of R rows from offset `off` should give, compared with
 * what the segmenter gives when the rows come in chunks of at most `chunk`
 * (0: random sizes, empty ones included); returns the number of mismatches */
static int run_case(const struct cmr_segmenter_cfg *cfg, int64_t off, int64_t R, int chunk, unsigned seed)
{
    struct cmr_error err = {0};
    struct cmr_segmenter *s = cmr_segmenter_new(cfg, &err);
    const struct cmr_segmenter_cfg *c;
    long nseg;
    int64_t L, H, want_units = 0, got = 0, pos = 0;
    int bad = 0;
    float *x = malloc((size_t)(R + 1) * W * sizeof *x), *u, *want;
    struct cmr_segment seg;

    if (!s)
        return 1;
    c = cmr_segmenter_cfg(s);
    nseg = c->context ? c->context : 1;
    L = (nseg - 1) * c->hop + c->frames;
    H = c->context ? c->run_hop * c->hop : c->hop;
    u = malloc((size_t)(nseg * c->frames * W) * sizeof *u);
    want = malloc((size_t)(nseg * c->frames * W) * sizeof *want);
    fill(x, off, R);
    srand(seed);
    bad += cmr_segmenter_next_row(s) != -1;
    while (pos <= R) {
        int64_t n = chunk ? chunk : rand() % 7;
        if (n > R - pos)
            n = R - pos;
        if (cmr_segmenter_push(s, x + pos * W, n, W, off + pos, NULL, &err) != CMR_OK) {
            diag("push: %s", err.msg);
            bad++;
            break;
        }
        pos += n;
        if (pos == R)
            cmr_segmenter_drain(s);
        while (cmr_segmenter_next(s, u, &seg) == 1) {
            /* the expected unit number `got` */
            int64_t start = off + got * H, valid = L;
            if (start + L > off + R)
                valid = off + R - start;
            for (long j = 0; j < nseg; j++)
                for (long t = 0; t < c->frames; t++)
                    for (int f = 0; f < W; f++) {
                        int64_t r = start + j * c->hop + t;
                        want[(j * c->frames + t) * W + f] = r - start < valid ? val(r, f) : 0.0f;
                    }
            if (seg.start != start || seg.valid != valid || seg.index != got || seg.tags ||
                memcmp(u, want, (size_t)(nseg * c->frames * W) * sizeof *u)) {
                if (!bad)
                    diag("unit %lld: start %lld (want %lld), valid %lld (want %lld)", (long long)got,
                         (long long)seg.start, (long long)start, (long long)seg.valid, (long long)valid);
                bad++;
            }
            got++;
        }
        if (pos == R)
            break;
    }
    /* complete units, then one padded unit if rows are left */
    if (R >= L)
        want_units = (R - L) / H + 1;
    if (c->pad && want_units * H < R)
        want_units++;
    if (got != want_units || cmr_segmenter_units(s) != got) {
        diag("%lld units, want %lld", (long long)got, (long long)want_units);
        bad++;
    }
    bad += cmr_segmenter_ready(s) != 0 || cmr_segmenter_next_row(s) != -1;
    cmr_segmenter_free(s);
    free(x);
    free(u);
    free(want);
    return bad;
}

static void test_against_direct_cut(void)
{
    static const long frames[] = {1, 4, 5};
    static const long hops[] = {0, 1, 2, 5, 7};
    static const long contexts[] = {0, 1, 3};
    static const int64_t lens[] = {0, 1, 4, 5, 6, 12, 31};
    int cases = 0, failed = 0;
    for (size_t a = 0; a < sizeof frames / sizeof *frames; a++)
        for (size_t b = 0; b < sizeof hops / sizeof *hops; b++)
            for (size_t k = 0; k < sizeof contexts / sizeof *contexts; k++)
                for (int pad = 0; pad < 2; pad++)
                    for (size_t l = 0; l < sizeof lens / sizeof *lens; l++)
                        for (int chunk = 0; chunk < 3; chunk++) {
                            struct cmr_segmenter_cfg cfg;
                            cfg = cmr_segmenter_cfg_default();
                            cfg.frames = frames[a];
                            cfg.hop = hops[b];
                            cfg.context = contexts[k];
                            cfg.run_hop = contexts[k] == 3 && chunk == 2 ? 2 : 0;
                            cfg.pad = pad;
                            int bad = run_case(&cfg, chunk == 1 ? 1000 : 0, lens[l], chunk == 2 ? 64 : chunk,
                                               (unsigned)cases);
                            if (bad && failed < 3)
                                diag("frames %ld hop %ld context %ld run_hop %ld pad %d rows %lld chunk %d",
                                     cfg.frames, cfg.hop, cfg.context, cfg.run_hop, pad, (long long)lens[l], chunk);
                            failed += bad != 0;
                            cases++;
                        }
    ok(failed == 0, "%d configurations x chunkings cut as a direct cut of the whole run (%d failed)", cases,
       failed);
}

static void test_defaults_and_bad_cfg(void)
{
    struct cmr_segmenter_cfg cfg;
    struct cmr_error err = {0};
    struct cmr_segmenter *s;
    cfg = cmr_segmenter_cfg_default();
    s = cmr_segmenter_new(&cfg, &err);
    ok(s && cmr_segmenter_cfg(s)->frames == 188 && cmr_segmenter_cfg(s)->hop == 188 &&
       cmr_segmenter_unit_rows(s) == 188 && !cmr_segmenter_cfg(s)->pad, "default: 188 rows back to back, no pad");
    cmr_segmenter_free(s);
    cfg.frames = 0;
    ok(!cmr_segmenter_new(&cfg, &err) && err.code == CMR_EINVAL && strstr(err.msg, "frames"),
       "frames 0 refused: %s", err.msg);
    cfg = cmr_segmenter_cfg_default();
    cfg.hop = -1;
    ok(!cmr_segmenter_new(&cfg, &err) && err.code == CMR_EINVAL, "hop -1 refused");
    cfg = cmr_segmenter_cfg_default();
    cfg.run_hop = 2;
    ok(!cmr_segmenter_new(&cfg, &err) && err.code == CMR_EINVAL && strstr(err.msg, "context"),
       "run_hop without context refused: %s", err.msg);
    ok(!cmr_segmenter_new(NULL, &err) && err.code == CMR_EINVAL, "no cfg refused");
    cmr_segmenter_free(NULL);
}

/* a gap or an overlap, and another width, are refused and change nothing */
static void test_discontinuity(void)
{
    struct cmr_segmenter_cfg cfg;
    struct cmr_error err = {0};
    struct cmr_segment seg;
    float x[10 * W], u[4 * W];
    cfg = cmr_segmenter_cfg_default();
    cfg.frames = 4;
    struct cmr_segmenter *s = cmr_segmenter_new(&cfg, &err);
    fill(x, 100, 10);
    ok(cmr_segmenter_push(s, x, 3, W, 100, NULL, &err) == CMR_OK && cmr_segmenter_next_row(s) == 103,
       "a run opens at the first push's offset");
    ok(cmr_segmenter_push(s, x + 3 * W, 2, W, 104, NULL, &err) == CMR_EINVAL &&
       !strcmp(err.msg, "starts at row 104, expected 103 (gaps and overlaps cannot be segmented)"),
       "a gap is refused: %s", err.msg);
    ok(cmr_segmenter_push(s, x + 3 * W, 2, W, 102, NULL, &err) == CMR_EINVAL, "an overlap is refused");
    ok(cmr_segmenter_push(s, x + 3 * W, 2, W + 1, 103, NULL, &err) == CMR_EINVAL &&
       !strcmp(err.msg, "has 4 features, earlier frames 3"), "another width is refused: %s", err.msg);
    ok(cmr_segmenter_next_row(s) == 103 && cmr_segmenter_ready(s) == 0, "and nothing was taken");
    ok(cmr_segmenter_push(s, x + 3 * W, 2, W, 103, NULL, &err) == CMR_OK && cmr_segmenter_ready(s) == 1 &&
       cmr_segmenter_next(s, u, &seg) == 1 && seg.start == 100 && !memcmp(u, x, sizeof u),
       "the run goes on where it stopped");
    /* a discontinuity, as cmrencode handles it: drain, then a new run anywhere */
    cmr_segmenter_drain(s);
    ok(cmr_segmenter_ready(s) == 0 && cmr_segmenter_units(s) == 1, "drain without pad drops the partial unit");
    ok(cmr_segmenter_push(s, x, 4, W, 7, NULL, &err) == CMR_OK && cmr_segmenter_units(s) == 0 &&
       cmr_segmenter_next(s, u, &seg) == 1 && seg.start == 7 && seg.index == 0 && !memcmp(u, x, sizeof u),
       "after drain a push opens a new run at its own offset, units from 0");
    /* reset forgets rows held */
    ok(cmr_segmenter_push(s, x, 3, W, 11, NULL, &err) == CMR_OK, "three more rows");
    cmr_segmenter_reset(s);
    ok(cmr_segmenter_next_row(s) == -1 && cmr_segmenter_ready(s) == 0 && cmr_segmenter_units(s) == 0,
       "reset forgets the run");
    ok(cmr_segmenter_push(s, x, 2, 2 * W, 0, NULL, &err) == CMR_OK && cmr_segmenter_unit_size(s) == 4 * 2 * W,
       "a new run may have another width");
    cmr_segmenter_free(s);
}

/* each unit carries the tags of the chunk holding its first row */
static void test_tags(void)
{
    struct cmr_segmenter_cfg cfg;
    struct cmr_error err = {0};
    struct cmr_segment seg;
    struct cmr_frame tags;
    float x[20 * W], u[5 * W];
    int64_t starts[] = {0, 3, 4, 9, 20}; /* chunk k holds rows [starts[k], starts[k+1]) */
    double want[] = {0, 1, 2, 3}, got;
    int bad = 0, n = 0;
    cfg = cmr_segmenter_cfg_default();
    cfg.frames = 5;
    cfg.hop = 2;
    cfg.pad = 1;
    struct cmr_segmenter *s = cmr_segmenter_new(&cfg, &err);
    fill(x, 0, 20);
    cmr_frame_init(&tags);
    for (int k = 0; k < 4; k++) {
        cmr_frame_info_set(&tags, "chunk", (double)k);
        cmr_frame_meta_set(&tags, "k", k % 2 ? "odd" : "even");
        cmr_segmenter_push(s, x + starts[k] * W, starts[k + 1] - starts[k], W, starts[k], &tags, &err);
        if (k == 3)
            cmr_segmenter_drain(s);
        while (cmr_segmenter_next(s, u, &seg) == 1) {
            int c = 0;
            while (c < 3 && starts[c + 1] <= seg.start)
                c++;
            if (!seg.tags || !cmr_frame_info_get(seg.tags, "chunk", &got) || got != want[c] ||
                strcmp(cmr_frame_meta_get(seg.tags, "k"), c % 2 ? "odd" : "even"))
                bad++;
            n++;
        }
    }
    /* units start at 0, 2, ..., 14 (complete) and 16 (padded) */
    ok(n == 9 && bad == 0, "%d units, each with the tags of the chunk of its first row (%d wrong)", n, bad);
    ok(seg.start == 16 && seg.valid == 4 && u[4 * W] == 0.0f, "the last one is padded: valid 4 of 5 rows");
    cmr_frame_free(&tags);
    cmr_segmenter_free(s);
}

int main(void)
{
    tap_plan_none();
    test_defaults_and_bad_cfg();
    test_against_direct_cut();
    test_discontinuity();
    test_tags();
    return tap_done();
}
