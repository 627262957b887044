/* Segmentation of feature rows (see segmenter.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "stream/segmenter.h"

/* the tags of one pushed chunk */
struct chunk {
    int64_t start;
    struct cmr_frame tags;
};

struct cmr_segmenter {
    struct cmr_segmenter_cfg cfg;  /* hop and run_hop resolved */
    int64_t unit_len, unit_hop;    /* rows one unit covers, rows between unit starts */
    long n_seg;                    /* segments per unit */
    /* the run */
    int open;                      /* rows may still come */
    int drained;                   /* ended; a padded unit may still be ready */
    int64_t width;
    float *buf;                    /* rows [base, base + n_rows), width floats each */
    size_t cap_rows;
    int64_t base, n_rows;
    int64_t next_start;            /* first row of the next unit */
    int64_t units;                 /* units written */
    struct chunk *chunks;          /* chunks that still have rows at or after base (tagged pushes) */
    int n_chunks, cap_chunks;
};

struct cmr_segmenter_cfg cmr_segmenter_cfg_default(void)
{
    struct cmr_segmenter_cfg cfg = {0};
    cfg.frames = CMR_SEGMENTER_FRAMES;
    return cfg;
}

struct cmr_segmenter *cmr_segmenter_new(const struct cmr_segmenter_cfg *cfg, struct cmr_error *err)
{
    struct cmr_segmenter *s;
    if (!cfg)
        return cmr_error_set(err, CMR_EINVAL, "segmenter: no configuration given"), NULL;
    if (cfg->frames < 1 || cfg->frames > 1000000)
        return cmr_error_set(err, CMR_EINVAL, "segmenter: frames should be in [1, 1000000], got %ld",
                             cfg->frames), NULL;
    if (cfg->hop < 0 || cfg->hop > 1000000 || cfg->context < 0 || cfg->context > 65536 || cfg->run_hop < 0 ||
        cfg->run_hop > 1000000)
        return cmr_error_set(err, CMR_EINVAL, "segmenter: hop, context and run_hop should be in [0, 1000000], "
                             "got %ld, %ld, %ld", cfg->hop, cfg->context, cfg->run_hop), NULL;
    if (cfg->run_hop && !cfg->context)
        return cmr_error_set(err, CMR_EINVAL, "segmenter: run_hop needs context"), NULL;
    if (!(s = calloc(1, sizeof *s)))
        return cmr_error_set(err, CMR_ENOMEM, "segmenter: out of memory"), NULL;
    s->cfg = *cfg;
    if (!s->cfg.hop)
        s->cfg.hop = s->cfg.frames;
    if (s->cfg.context && !s->cfg.run_hop)
        s->cfg.run_hop = s->cfg.context;
    s->n_seg = s->cfg.context ? s->cfg.context : 1;
    s->unit_len = (int64_t)(s->n_seg - 1) * s->cfg.hop + s->cfg.frames;
    s->unit_hop = s->cfg.context ? (int64_t)s->cfg.run_hop * s->cfg.hop : s->cfg.hop;
    return s;
}

static void clear_chunks(struct cmr_segmenter *s, int k)
{
    for (int i = 0; i < k; i++)
        cmr_frame_free(&s->chunks[i].tags);
    if (k && k < s->n_chunks)
        memmove(s->chunks, s->chunks + k, (size_t)(s->n_chunks - k) * sizeof *s->chunks);
    s->n_chunks -= k;
}

void cmr_segmenter_reset(struct cmr_segmenter *s)
{
    clear_chunks(s, s->n_chunks);
    s->open = s->drained = 0;
    s->n_rows = 0;
    s->units = 0;
}

void cmr_segmenter_free(struct cmr_segmenter *s)
{
    if (!s)
        return;
    cmr_segmenter_reset(s);
    free(s->chunks);
    free(s->buf);
    free(s);
}

/* drops rows (and chunk tags) that no later unit needs */
static void compact(struct cmr_segmenter *s)
{
    int64_t keep_from = s->next_start, end = s->base + s->n_rows, drop;
    int k = 0;
    if (keep_from > end)
        keep_from = end;
    drop = keep_from - s->base;
    if (drop > 0) {
        memmove(s->buf, s->buf + (size_t)drop * (size_t)s->width,
                (size_t)(s->n_rows - drop) * (size_t)s->width * sizeof(float));
        s->base += drop;
        s->n_rows -= drop;
    }
    /* keep the last chunk starting at or before base, and all after it */
    for (int i = 0; i < s->n_chunks; i++)
        if (s->chunks[i].start <= s->base)
            k = i;
    clear_chunks(s, k);
}

static int add_tags(struct cmr_segmenter *s, int64_t start, const struct cmr_frame *tags)
{
    struct chunk *c;
    if (s->n_chunks == s->cap_chunks) {
        int cap = s->cap_chunks ? 2 * s->cap_chunks : 8;
        struct chunk *p = realloc(s->chunks, (size_t)cap * sizeof *p);
        if (!p)
            return CMR_ENOMEM;
        s->chunks = p;
        s->cap_chunks = cap;
    }
    c = &s->chunks[s->n_chunks];
    c->start = start;
    cmr_frame_init(&c->tags);
    s->n_chunks++;
    if (cmr_frame_meta_copy(&c->tags, tags) != CMR_OK || cmr_frame_info_copy(&c->tags, tags) != CMR_OK)
        return CMR_ENOMEM;
    return CMR_OK;
}

static int reserve_rows(struct cmr_segmenter *s, int64_t n)
{
    size_t need = (size_t)(s->n_rows + n), cap;
    float *p;
    if (need <= s->cap_rows)
        return CMR_OK;
    cap = s->cap_rows ? s->cap_rows : 1024;
    while (cap < need)
        cap *= 2;
    if (!(p = realloc(s->buf, cap * (size_t)s->width * sizeof *p)))
        return CMR_ENOMEM;
    s->buf = p;
    s->cap_rows = cap;
    return CMR_OK;
}

int cmr_segmenter_push(struct cmr_segmenter *s, const float *rows, int64_t n, int64_t width,
                       int64_t offset, const struct cmr_frame *tags, struct cmr_error *err)
{
    if (n < 0 || width < 1)
        return cmr_error_set(err, CMR_EINVAL, "segmenter: %lld rows of %lld features", (long long)n,
                             (long long)width);
    if (!s->open) {
        if (s->width != width)
            s->cap_rows = 0; /* rows of another width: the buffer is resized */
        cmr_segmenter_reset(s);
        s->open = 1;
        s->width = width;
        s->base = s->next_start = offset;
    }
    if (width != s->width)
        return cmr_error_set(err, CMR_EINVAL, "has %lld features, earlier frames %lld", (long long)width,
                             (long long)s->width);
    if (offset != s->base + s->n_rows)
        return cmr_error_set(err, CMR_EINVAL, "starts at row %lld, expected %lld (gaps and overlaps cannot be "
                             "segmented)", (long long)offset, (long long)(s->base + s->n_rows));
    if (n == 0)
        return CMR_OK;
    compact(s);
    if ((tags && add_tags(s, offset, tags) != CMR_OK) || reserve_rows(s, n) != CMR_OK)
        return cmr_error_set(err, CMR_ENOMEM, "segmenter: out of memory");
    memcpy(s->buf + (size_t)s->n_rows * (size_t)width, rows, (size_t)n * (size_t)width * sizeof(float));
    s->n_rows += n;
    return CMR_OK;
}

void cmr_segmenter_drain(struct cmr_segmenter *s)
{
    if (s->open) {
        s->open = 0;
        s->drained = 1;
    }
}

void cmr_segmenter_set_pad(struct cmr_segmenter *s, int pad)
{
    s->cfg.pad = pad != 0;
}

int64_t cmr_segmenter_ready(const struct cmr_segmenter *s)
{
    int64_t end = s->base + s->n_rows, k = 0;
    if (!s->open && !s->drained)
        return 0;
    if (s->next_start + s->unit_len <= end)
        k = (end - s->unit_len - s->next_start) / s->unit_hop + 1;
    else if (s->drained && s->cfg.pad && s->next_start < end)
        k = 1;
    return k;
}

/* the tags of the chunk holding row r */
static const struct cmr_frame *tags_at(const struct cmr_segmenter *s, int64_t r)
{
    int k = 0;
    if (!s->n_chunks)
        return NULL;
    for (int i = 0; i < s->n_chunks; i++)
        if (s->chunks[i].start <= r)
            k = i;
    return &s->chunks[k].tags;
}

int cmr_segmenter_next(struct cmr_segmenter *s, float *dst, struct cmr_segment *seg)
{
    int64_t u = s->next_start, end = s->base + s->n_rows, valid_end;
    size_t row = (size_t)s->width, len = (size_t)s->cfg.frames * row;
    if (!cmr_segmenter_ready(s))
        return 0;
    valid_end = u + s->unit_len <= end ? u + s->unit_len : end;
    for (long j = 0; j < s->n_seg; j++) {
        int64_t r0 = u + j * s->cfg.hop;
        float *d = dst + (size_t)j * len;
        int64_t have = valid_end - r0;
        if (have < 0)
            have = 0;
        if (have > s->cfg.frames)
            have = s->cfg.frames;
        if (have)
            memcpy(d, s->buf + (size_t)(r0 - s->base) * row, (size_t)have * row * sizeof(float));
        memset(d + (size_t)have * row, 0, (size_t)(s->cfg.frames - have) * row * sizeof(float));
    }
    seg->start = u;
    seg->valid = valid_end - u;
    seg->index = s->units++;
    seg->tags = tags_at(s, u);
    if (valid_end < u + s->unit_len)
        s->next_start = end; /* the padded unit is the run's last */
    else
        s->next_start += s->unit_hop;
    return 1;
}

int64_t cmr_segmenter_next_row(const struct cmr_segmenter *s)
{
    return s->open ? s->base + s->n_rows : -1;
}

int64_t cmr_segmenter_units(const struct cmr_segmenter *s)
{
    return s->units;
}

int64_t cmr_segmenter_unit_rows(const struct cmr_segmenter *s)
{
    return s->unit_len;
}

size_t cmr_segmenter_unit_size(const struct cmr_segmenter *s)
{
    return (size_t)s->n_seg * (size_t)s->cfg.frames * (size_t)s->width;
}

const struct cmr_segmenter_cfg *cmr_segmenter_cfg(const struct cmr_segmenter *s)
{
    return &s->cfg;
}
