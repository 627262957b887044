/* lib/pair: crop positions for each strategy, measured over many draws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "pair.h"

#define NDRAWS 4000

static void test_defaults(void)
{
    struct cmr_pair_cfg c;
    c = cmr_pair_cfg_default(16000);
    ok(c.segment == 48000 && c.crop == 57600 && c.gap == 8000 && c.context == 4 && c.predict == 2,
       "defaults at 16 kHz: segment 48000, crop 57600, gap 8000, context 4, predict 2");
    ok(cmr_pair_cfg_check(&c, NULL) == CMR_OK, "defaults pass the check");
    ok(cmr_pair_rows(&c) == 2, "a pair has 2 rows");
    c.strategy = CMR_PAIR_SEQUENCE;
    ok(cmr_pair_rows(&c) == 6, "a sequence has context + predict = 6 rows");

    c.strategy = CMR_PAIR_SELF;
    ok(cmr_pair_min_length(&c) == 57600, "self needs one crop (3.6 s)");
    c.strategy = CMR_PAIR_ADJACENT;
    ok(cmr_pair_min_length(&c) == 48000 + 8000 + 57600, "adjacent needs segment + gap + crop (7.1 s)");
    c.strategy = CMR_PAIR_RANDOM;
    ok(cmr_pair_min_length(&c) == 2 * 57600, "random needs two crops (7.2 s)");
    c.strategy = CMR_PAIR_SEQUENCE;
    ok(cmr_pair_min_length(&c) == 5 * 48000 + 57600, "sequence needs 5 segments + a crop (18.6 s)");

    ok(cmr_pair_strategy_parse("adjacent") == CMR_PAIR_ADJACENT && cmr_pair_strategy_parse("nope") == -1 &&
       strcmp(cmr_pair_strategy_name(CMR_PAIR_RANDOM), "random") == 0, "strategy names parse and print");
}

static void test_wrong_params(void)
{
    struct cmr_pair_cfg c;
    struct cmr_error err = {0};
    c = cmr_pair_cfg_default(16000);
    c.crop = c.segment - 1;
    ok(cmr_pair_cfg_check(&c, &err) == CMR_EINVAL && strstr(err.msg, "crop"), "crop < segment: %s", err.msg);
    c = cmr_pair_cfg_default(16000);
    c.segment = 0;
    ok(cmr_pair_cfg_check(&c, &err) == CMR_EINVAL, "segment 0: %s", err.msg);
    c = cmr_pair_cfg_default(16000);
    c.gap = -1;
    ok(cmr_pair_cfg_check(&c, &err) == CMR_EINVAL, "negative gap: %s", err.msg);
    c = cmr_pair_cfg_default(16000);
    c.strategy = CMR_PAIR_SEQUENCE;
    c.predict = 0;
    ok(cmr_pair_cfg_check(&c, &err) == CMR_EINVAL, "predict 0: %s", err.msg);
    c.predict = 2;
    c.context = CMR_PAIR_MAX_ROWS;
    ok(cmr_pair_cfg_check(&c, &err) == CMR_EINVAL, "too many rows: %s", err.msg);
    c.strategy = (enum cmr_pair_strategy)9;
    ok(cmr_pair_cfg_check(&c, &err) == CMR_EINVAL, "unknown strategy: %s", err.msg);
}

/* small sizes so that edge positions are hit often */
static void small_cfg(struct cmr_pair_cfg *c, enum cmr_pair_strategy s)
{
    memset(c, 0, sizeof *c);
    c->strategy = s;
    c->segment = 30;
    c->crop = 36;
    c->gap = 5;
    c->context = 4;
    c->predict = 2;
}

static void test_too_short(void)
{
    struct cmr_pair_cfg c;
    struct cmr_rng rng;
    struct cmr_pair_draw d;
    struct cmr_error err = {0};
    cmr_rng_seed(&rng, 1);
    for (int s = CMR_PAIR_SELF; s <= CMR_PAIR_SEQUENCE; s++) {
        small_cfg(&c, s);
        int64_t need = cmr_pair_min_length(&c);
        int short_fails = cmr_pair_draw(&c, need - 1, &rng, &d, &err) == CMR_EINVAL;
        int exact_ok = cmr_pair_draw(&c, need, &rng, &d, NULL) == CMR_OK;
        ok(short_fails && exact_ok, "%s: %lld samples refused (%s), %lld accepted", cmr_pair_strategy_name(s),
           (long long)need - 1, err.msg, (long long)need);
    }
}

static void test_self(void)
{
    struct cmr_pair_cfg c;
    struct cmr_rng rng;
    struct cmr_pair_draw d;
    small_cfg(&c, CMR_PAIR_SELF);
    cmr_rng_seed(&rng, 2);
    int64_t n = c.crop + 9; /* 10 possible starts */
    int count[10] = {0}, bad = 0;
    for (int i = 0; i < NDRAWS; i++) {
        cmr_pair_draw(&c, n, &rng, &d, NULL);
        if (d.offset[0] != d.offset[1] || d.offset[0] < 0 || d.offset[0] > 9 || d.swapped)
            bad++;
        else
            count[d.offset[0]]++;
    }
    ok(bad == 0, "self: anchor == positive, inside the track, never swapped");
    /* uniform: each of 10 starts ~ NDRAWS/10 = 400, sd ~ 19 */
    int lo = NDRAWS, hi = 0;
    for (int i = 0; i < 10; i++) {
        lo = count[i] < lo ? count[i] : lo;
        hi = count[i] > hi ? count[i] : hi;
    }
    ok(lo > 300 && hi < 500, "self: starts uniform over [0, n - crop] (counts %d..%d of %d)", lo, hi, NDRAWS);
}

static void test_adjacent(void)
{
    struct cmr_pair_cfg c;
    struct cmr_rng rng;
    struct cmr_pair_draw d;
    small_cfg(&c, CMR_PAIR_ADJACENT);
    cmr_rng_seed(&rng, 3);
    int64_t n = cmr_pair_min_length(&c) + 4; /* 5 possible earlier starts */
    int bad = 0, swapped = 0, first[5] = {0};
    for (int i = 0; i < NDRAWS; i++) {
        cmr_pair_draw(&c, n, &rng, &d, NULL);
        int64_t early = d.swapped ? d.offset[1] : d.offset[0];
        int64_t late = d.swapped ? d.offset[0] : d.offset[1];
        if (late - early != c.segment + c.gap || early < 0 || late + c.crop > n)
            bad++;
        else
            first[early]++;
        swapped += d.swapped;
    }
    ok(bad == 0, "adjacent: later crop starts segment + gap after the earlier one, both inside");
    double f = (double)swapped / NDRAWS;
    ok(fabs(f - 0.5) < 0.04, "adjacent: order swapped with p = 0.5 (%.3f)", f);
    int lo = NDRAWS, hi = 0;
    for (int i = 0; i < 5; i++) {
        lo = first[i] < lo ? first[i] : lo;
        hi = first[i] > hi ? first[i] : hi;
    }
    ok(lo > 650 && hi < 950, "adjacent: earlier start uniform (counts %d..%d, expect 800)", lo, hi);

    /* the paper's numbers: anchor segment [a, a+3 s), positive [a+3.5 s, a+6.5 s) */
    c = cmr_pair_cfg_default(16000);
    c.strategy = CMR_PAIR_ADJACENT;
    cmr_pair_draw(&c, 16000 * 30, &rng, &d, NULL);
    int64_t early = d.swapped ? d.offset[1] : d.offset[0];
    int64_t late = d.swapped ? d.offset[0] : d.offset[1];
    ok(late - early == 56000, "adjacent at 16 kHz: the positive starts 3.5 s (56000 samples) after the anchor");
}

static void test_random(void)
{
    struct cmr_pair_cfg c;
    struct cmr_rng rng;
    struct cmr_pair_draw d;
    small_cfg(&c, CMR_PAIR_RANDOM);
    cmr_rng_seed(&rng, 4);
    int64_t C = c.crop;

    /* at exactly two crops the only draws are (0, C) and (C, 0) */
    int seen0 = 0, seenC = 0, bad = 0;
    for (int i = 0; i < 200; i++) {
        cmr_pair_draw(&c, 2 * C, &rng, &d, NULL);
        if (d.offset[0] == 0 && d.offset[1] == C)
            seen0++;
        else if (d.offset[0] == C && d.offset[1] == 0)
            seenC++;
        else
            bad++;
    }
    ok(bad == 0 && seen0 > 60 && seenC > 60, "random at 2 crops: (0,C) %d times, (C,0) %d times", seen0, seenC);

    /* a longer track: crops disjoint, inside, positives on both sides */
    int64_t n = 5 * C;
    int64_t last = n - C;
    int before = 0, after = 0;
    int hist[4] = {0};
    bad = 0;
    for (int i = 0; i < NDRAWS; i++) {
        cmr_pair_draw(&c, n, &rng, &d, NULL);
        int64_t a = d.offset[0], p = d.offset[1];
        if (a < 0 || p < 0 || a > last || p > last || llabs(p - a) < C)
            bad++;
        before += p < a;
        after += p > a;
        hist[a * 4 / (last + 1)]++;
    }
    ok(bad == 0, "random: anchor and positive crops disjoint and inside the track");
    ok(before > NDRAWS / 4 && after > NDRAWS / 4, "random: positives before (%d) and after (%d) the anchor",
       before, after);
    ok(hist[0] > 850 && hist[3] > 850 && hist[1] > 850 && hist[2] > 850,
       "random: anchors uniform over the track (quarters %d %d %d %d)", hist[0], hist[1], hist[2], hist[3]);

    /* positive uniform over the rest given the anchor: with n = 2C + 5, anchors
     * are in [0,5] u [C, C+5] and the positive is in the other interval */
    n = 2 * C + 5;
    bad = 0;
    for (int i = 0; i < NDRAWS; i++) {
        cmr_pair_draw(&c, n, &rng, &d, NULL);
        int64_t a = d.offset[0], p = d.offset[1];
        int a_ok = (a >= 0 && a <= 5) || (a >= C && a <= C + 5);
        if (!a_ok || llabs(p - a) < C || p < 0 || p > n - C)
            bad++;
    }
    ok(bad == 0, "random near the minimum: anchors only where a disjoint positive fits");
}

static void test_sequence(void)
{
    struct cmr_pair_cfg c;
    struct cmr_rng rng;
    struct cmr_pair_draw d;
    small_cfg(&c, CMR_PAIR_SEQUENCE);
    cmr_rng_seed(&rng, 5);
    int64_t n = cmr_pair_min_length(&c) + 20;
    int bad = 0, at_end = 0;
    for (int i = 0; i < NDRAWS; i++) {
        cmr_pair_draw(&c, n, &rng, &d, NULL);
        for (int r = 0; r < 6; r++)
            if (d.offset[r] != d.offset[0] + r * c.segment)
                bad++;
        if (d.offset[0] < 0 || d.offset[5] + c.crop > n)
            bad++;
        at_end += d.offset[5] + c.crop == n;
    }
    ok(bad == 0, "sequence: 6 crops a segment apart, inside the track");
    ok(at_end > 100, "sequence: the last possible start is drawn (%d of %d, expect ~190)", at_end, NDRAWS);
}

static void test_rng_and_extract(void)
{
    struct cmr_rng root, r1, r2, r3;
    struct cmr_pair_cfg c;
    struct cmr_pair_draw d1, d2, d3;
    c = cmr_pair_cfg_default(16000);
    c.strategy = CMR_PAIR_RANDOM;
    cmr_rng_seed(&root, 42);
    cmr_pair_rng(&root, "a.flac", 3, &r1);
    cmr_pair_rng(&root, "a.flac", 3, &r2);
    cmr_pair_draw(&c, 16000 * 60, &r1, &d1, NULL);
    cmr_pair_draw(&c, 16000 * 60, &r2, &d2, NULL);
    ok(d1.offset[0] == d2.offset[0] && d1.offset[1] == d2.offset[1], "same seed, track and epoch: same draw");
    int differ_epoch = 0, differ_track = 0;
    for (int e = 0; e < 8; e++) {
        cmr_pair_rng(&root, "a.flac", e + 4, &r3);
        cmr_pair_draw(&c, 16000 * 60, &r3, &d3, NULL);
        differ_epoch += d3.offset[0] != d1.offset[0];
        cmr_pair_rng(&root, e % 2 ? "b.flac" : "a.flacx", 3, &r3);
        cmr_pair_draw(&c, 16000 * 60, &r3, &d3, NULL);
        differ_track += d3.offset[0] != d1.offset[0];
    }
    ok(differ_epoch == 8 && differ_track == 8, "other epochs and other tracks draw differently");
    ok(cmr_pair_track_hash("") == 0xcbf29ce484222325ULL && cmr_pair_track_hash("a") == 0xaf63dc4c8601ec8cULL,
       "track hash is 64-bit FNV-1a");

    /* extract: the crops are the track's samples at the drawn offsets */
    int64_t n = 16000 * 10;
    float *audio = malloc((size_t)n * sizeof *audio);
    float *out = malloc(2 * (size_t)c.crop * sizeof *out);
    for (int64_t i = 0; i < n; i++)
        audio[i] = (float)i;
    cmr_pair_draw(&c, n, &r1, &d1, NULL);
    cmr_pair_extract(&c, &d1, audio, n, out);
    ok(out[0] == (float)d1.offset[0] && out[c.crop - 1] == (float)(d1.offset[0] + c.crop - 1) &&
       out[c.crop] == (float)d1.offset[1] && out[2 * c.crop - 1] == (float)(d1.offset[1] + c.crop - 1),
       "extract copies [offset, offset + crop) for each row");
    free(audio);
    free(out);

    size_t perm[100], perm2[100];
    int seen[100] = {0}, dup = 0, moved = 0;
    cmr_rng_seed(&r1, 7);
    cmr_pair_shuffle(&r1, perm, 100);
    cmr_rng_seed(&r1, 7);
    cmr_pair_shuffle(&r1, perm2, 100);
    for (int i = 0; i < 100; i++) {
        dup += seen[perm[i]]++ > 0;
        moved += perm[i] != (size_t)i;
    }
    ok(dup == 0 && moved > 80 && memcmp(perm, perm2, sizeof perm) == 0,
       "shuffle: a permutation (%d of 100 moved), the same for the same seed", moved);
}

int main(void)
{
    tap_plan_none();
    test_defaults();
    test_wrong_params();
    test_too_short();
    test_self();
    test_adjacent();
    test_random();
    test_sequence();
    test_rng_and_extract();
    return tap_done();
}
