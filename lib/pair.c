/* Positive sampling: see pair.h for the exact definitions. */
#include "pair.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static const char *const strategy_names[] = {"self", "adjacent", "random", "sequence"};

struct cmr_pair_cfg cmr_pair_cfg_default(double rate)
{
    return (struct cmr_pair_cfg){
        .strategy = CMR_PAIR_SELF,
        .segment = (int64_t)llround(3.0 * rate),
        .crop = (int64_t)llround(3.6 * rate),
        .gap = (int64_t)llround(0.5 * rate),
        .context = 4,
        .predict = 2,
    };
}

int cmr_pair_cfg_check(const struct cmr_pair_cfg *cfg, struct cmr_error *err)
{
    if ((unsigned)cfg->strategy > CMR_PAIR_SEQUENCE)
        return cmr_error_set(err, CMR_EINVAL, "pair: unknown strategy %d", (int)cfg->strategy);
    if (cfg->segment < 1)
        return cmr_error_set(err, CMR_EINVAL, "pair: segment should be >= 1 sample, got %lld",
                             (long long)cfg->segment);
    if (cfg->crop < cfg->segment)
        return cmr_error_set(err, CMR_EINVAL, "pair: crop should be >= segment (%lld), got %lld",
                             (long long)cfg->segment, (long long)cfg->crop);
    if (cfg->gap < 0)
        return cmr_error_set(err, CMR_EINVAL, "pair: gap should be >= 0, got %lld", (long long)cfg->gap);
    if (cfg->strategy == CMR_PAIR_SEQUENCE) {
        if (cfg->context < 1 || cfg->predict < 1 || cfg->context + cfg->predict > CMR_PAIR_MAX_ROWS)
            return cmr_error_set(err, CMR_EINVAL,
                                 "pair: context >= 1, predict >= 1 and context + predict <= %d, got %d + %d",
                                 CMR_PAIR_MAX_ROWS, cfg->context, cfg->predict);
    }
    /* keep every position sum far from overflow */
    int64_t limit = (int64_t)1 << 40;
    if (cfg->crop > limit || cfg->gap > limit)
        return cmr_error_set(err, CMR_EINVAL, "pair: crop and gap should be below 2^40 samples");
    return CMR_OK;
}

const char *cmr_pair_strategy_name(enum cmr_pair_strategy s)
{
    return (unsigned)s <= CMR_PAIR_SEQUENCE ? strategy_names[s] : "?";
}

int cmr_pair_strategy_parse(const char *name)
{
    for (int i = 0; i <= CMR_PAIR_SEQUENCE; i++)
        if (strcmp(name, strategy_names[i]) == 0)
            return i;
    return -1;
}

int cmr_pair_rows(const struct cmr_pair_cfg *cfg)
{
    return cfg->strategy == CMR_PAIR_SEQUENCE ? cfg->context + cfg->predict : 2;
}

int64_t cmr_pair_min_length(const struct cmr_pair_cfg *cfg)
{
    switch (cfg->strategy) {
    case CMR_PAIR_SELF:
        return cfg->crop;
    case CMR_PAIR_ADJACENT:
        return cfg->segment + cfg->gap + cfg->crop;
    case CMR_PAIR_RANDOM:
        return 2 * cfg->crop;
    case CMR_PAIR_SEQUENCE:
        return (int64_t)(cfg->context + cfg->predict - 1) * cfg->segment + cfg->crop;
    }
    return INT64_MAX;
}

/* uniform integer in [0, n) for n >= 1 */
static int64_t below(struct cmr_rng *rng, int64_t n)
{
    return (int64_t)cmr_rng_below(rng, (uint64_t)n);
}

int cmr_pair_draw(const struct cmr_pair_cfg *cfg, int64_t n, struct cmr_rng *rng,
                  struct cmr_pair_draw *d, struct cmr_error *err)
{
    int64_t need = cmr_pair_min_length(cfg);
    if (n < need)
        return cmr_error_set(err, CMR_EINVAL, "pair: %s needs a track of >= %lld samples, got %lld",
                             cmr_pair_strategy_name(cfg->strategy), (long long)need, (long long)n);
    int64_t C = cfg->crop, S = cfg->segment;
    int64_t last = n - C; /* the last possible crop start */
    memset(d, 0, sizeof *d);
    switch (cfg->strategy) {
    case CMR_PAIR_SELF:
        d->offset[0] = d->offset[1] = below(rng, last + 1);
        break;
    case CMR_PAIR_ADJACENT: {
        int64_t a = below(rng, n - need + 1);
        int64_t later = a + S + cfg->gap;
        d->swapped = cmr_rng_uniform(rng) < 0.5;
        d->offset[0] = d->swapped ? later : a;
        d->offset[1] = d->swapped ? a : later;
        break;
    }
    case CMR_PAIR_RANDOM: {
        /* anchors with room for a disjoint positive: [0, last-C] u [C, last] */
        int64_t a, len = last - C + 1; /* size of each interval, >= 1 */
        if (len >= C) /* the intervals meet: every start qualifies */
            a = below(rng, last + 1);
        else {
            int64_t k = below(rng, 2 * len);
            a = k < len ? k : C + (k - len);
        }
        /* positives: [0, a-C] u [a+C, last] */
        int64_t s1 = a - C + 1 > 0 ? a - C + 1 : 0;
        int64_t s2 = last - (a + C) + 1 > 0 ? last - (a + C) + 1 : 0;
        int64_t k = below(rng, s1 + s2);
        d->offset[0] = a;
        d->offset[1] = k < s1 ? k : a + C + (k - s1);
        break;
    }
    case CMR_PAIR_SEQUENCE: {
        int64_t a = below(rng, n - need + 1);
        for (int r = 0; r < cfg->context + cfg->predict; r++)
            d->offset[r] = a + r * S;
        break;
    }
    }
    return CMR_OK;
}

void cmr_pair_extract(const struct cmr_pair_cfg *cfg, const struct cmr_pair_draw *d,
                      const float *audio, int64_t n, float *out)
{
    int rows = cmr_pair_rows(cfg);
    for (int r = 0; r < rows; r++) {
        assert(d->offset[r] >= 0 && d->offset[r] + cfg->crop <= n); /* as cmr_pair_draw makes them */
        memcpy(out + (size_t)r * (size_t)cfg->crop, audio + d->offset[r], (size_t)cfg->crop * sizeof *out);
    }
}

uint64_t cmr_pair_track_hash(const char *track)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)track; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void cmr_pair_rng(const struct cmr_rng *root, const char *track, int64_t epoch, struct cmr_rng *out)
{
    struct cmr_rng t;
    cmr_rng_split(root, cmr_pair_track_hash(track), &t);
    cmr_rng_split(&t, (uint64_t)epoch, out);
}

void cmr_pair_shuffle(struct cmr_rng *rng, size_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cmr_rng_below(rng, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
