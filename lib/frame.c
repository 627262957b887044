/* cmr frames: MessagePack stream reader and writer (see frame.h, docs/frames.md).
 *
 * The reader follows msgpack-c's streaming loop (reserve_buffer -> read ->
 * buffer_consumed -> unpacker_next) and checks each frame's shape one rule at
 * a time, with one error code per rule (fluent-bit's decoder). It bounds the
 * bytes it buffers for one frame (neovim bounds its headers) and copies every
 * payload out of the msgpack zone before returning. */
#include "config.h"
#include "frame.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#define READ_CHUNK 65536
#define SLACK_BYTES 65536 /* room for keys and metadata around the data */

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int replace_str(char **dst, const char *src)
{
    char *d = NULL;
    if (src && !(d = strdup(src)))
        return CMR_ENOMEM;
    free(*dst);
    *dst = d;
    return CMR_OK;
}

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return CMR_OK;
    int n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * elem);
    if (!q)
        return CMR_ENOMEM;
    *p = q;
    *cap = n;
    return CMR_OK;
}

static void free_kvs(struct cmr_kv *kv, int n)
{
    for (int i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].val);
    }
}

static void free_stage(struct cmr_stage *s)
{
    free(s->program);
    free(s->version);
    free_kvs(s->params, s->n_params);
    free(s->params);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ */
/* frames                                                              */

void cmr_frame_init(struct cmr_frame *fr)
{
    memset(fr, 0, sizeof *fr);
    fr->frames = -1;
}

void cmr_frame_reset(struct cmr_frame *fr)
{
    for (int i = 0; i < fr->n_stages; i++)
        free_stage(&fr->stages[i]);
    fr->n_stages = 0;
    free_kvs(fr->meta, fr->n_meta);
    fr->n_meta = 0;
    for (int i = 0; i < fr->n_info; i++)
        free(fr->info[i].key);
    fr->n_info = 0;
    free(fr->track);
    fr->track = NULL;
    free(fr->error);
    fr->error = NULL;
    fr->type = CMR_FRAME_NONE;
    fr->version = 0;
    fr->kind[0] = 0;
    fr->index = fr->offset = 0;
    fr->rate = 0;
    fr->ndim = 0;
    fr->frames = -1;
}

void cmr_frame_free(struct cmr_frame *fr)
{
    cmr_frame_reset(fr);
    free(fr->stages);
    free(fr->meta);
    free(fr->info);
    free(fr->data);
    cmr_frame_init(fr);
}

size_t cmr_frame_numel(const struct cmr_frame *fr)
{
    if (fr->type != CMR_FRAME_TENSOR)
        return 0;
    size_t n = 1;
    for (int i = 0; i < fr->ndim; i++)
        n *= (size_t)fr->shape[i];
    return n;
}

int cmr_frame_set_track(struct cmr_frame *fr, const char *track)
{
    if (!track)
        return CMR_EINVAL;
    if (fr->track && strcmp(fr->track, track) == 0)
        return CMR_OK;
    return replace_str(&fr->track, track);
}

int cmr_frame_set_error(struct cmr_frame *fr, const char *msg)
{
    int rc = replace_str(&fr->error, msg);
    /* free text (it often quotes a file name): bytes that are not UTF-8
     * become '?' so that the frame can be written */
    if (rc == CMR_OK && fr->error) {
        size_t n = strlen(fr->error), bad;
        if (n > CMR_FRAME_MAX_STRING)
            fr->error[n = CMR_FRAME_MAX_STRING] = 0;
        for (size_t i = 0; !cmr_utf8_valid(fr->error + i, n - i, &bad); i += bad + 1)
            fr->error[i + bad] = '?';
    }
    return rc;
}

static int reserve_data(struct cmr_frame *fr, size_t n)
{
    if (n <= fr->cap)
        return CMR_OK;
    float *d = realloc(fr->data, (n ? n : 1) * sizeof(float));
    if (!d)
        return CMR_ENOMEM;
    fr->data = d;
    fr->cap = n;
    return CMR_OK;
}

int cmr_frame_make_tensor(struct cmr_frame *fr, const char *kind, const char *track, int ndim,
                          const int64_t *shape)
{
    if (!kind || strlen(kind) >= CMR_KIND_MAX || !track || ndim < 1 || ndim > CMR_FRAME_MAX_DIMS)
        return CMR_EINVAL;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return CMR_ESHAPE;
        if (shape[i] && n > CMR_FRAME_MAX_BYTES_DEFAULT / sizeof(float) / (size_t)shape[i])
            return CMR_ETOOBIG;
        n *= (size_t)shape[i];
    }
    int rc = reserve_data(fr, n);
    if (rc == CMR_OK)
        rc = cmr_frame_set_track(fr, track);
    if (rc != CMR_OK)
        return rc;
    fr->type = CMR_FRAME_TENSOR;
    strcpy(fr->kind, kind);
    fr->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        fr->shape[i] = shape[i];
    return CMR_OK;
}

int cmr_frame_make_end(struct cmr_frame *fr, const char *track, int64_t frames)
{
    int rc = cmr_frame_set_track(fr, track);
    if (rc != CMR_OK)
        return rc;
    fr->type = CMR_FRAME_END;
    fr->frames = frames;
    return CMR_OK;
}

int cmr_frame_add_stage(struct cmr_frame *fr, const char *program)
{
    if (grow((void **)&fr->stages, &fr->cap_stages, fr->n_stages + 1, sizeof *fr->stages))
        return CMR_ENOMEM;
    struct cmr_stage *s = &fr->stages[fr->n_stages];
    memset(s, 0, sizeof *s);
    s->program = strdup(program);
    s->version = strdup(PACKAGE_VERSION);
    if (!s->program || !s->version) {
        free_stage(s);
        return CMR_ENOMEM;
    }
    fr->n_stages++;
    return CMR_OK;
}

int cmr_frame_make_header(struct cmr_frame *fr, const char *program)
{
    cmr_frame_reset(fr);
    fr->type = CMR_FRAME_HEADER;
    fr->version = CMR_FORMAT_VERSION;
    return cmr_frame_add_stage(fr, program);
}

int cmr_frame_stage_param(struct cmr_frame *fr, const char *key, const char *fmt, ...)
{
    if (fr->n_stages == 0)
        return CMR_ESTATE;
    struct cmr_stage *s = &fr->stages[fr->n_stages - 1];
    char buf[CMR_FRAME_MAX_STRING];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* a key given again replaces its value: a map never holds a key twice */
    for (int i = 0; i < s->n_params; i++)
        if (strcmp(s->params[i].key, key) == 0)
            return replace_str(&s->params[i].val, buf);
    if (grow((void **)&s->params, &s->cap_params, s->n_params + 1, sizeof *s->params))
        return CMR_ENOMEM;
    struct cmr_kv *kv = &s->params[s->n_params];
    kv->key = strdup(key);
    kv->val = strdup(buf);
    if (!kv->key || !kv->val) {
        free(kv->key);
        free(kv->val);
        return CMR_ENOMEM;
    }
    s->n_params++;
    return CMR_OK;
}

const char *cmr_frame_meta_get(const struct cmr_frame *fr, const char *key)
{
    for (int i = 0; i < fr->n_meta; i++)
        if (strcmp(fr->meta[i].key, key) == 0)
            return fr->meta[i].val;
    return NULL;
}

int cmr_frame_meta_set(struct cmr_frame *fr, const char *key, const char *val)
{
    for (int i = 0; i < fr->n_meta; i++)
        if (strcmp(fr->meta[i].key, key) == 0)
            return replace_str(&fr->meta[i].val, val ? val : "");
    if (grow((void **)&fr->meta, &fr->cap_meta, fr->n_meta + 1, sizeof *fr->meta))
        return CMR_ENOMEM;
    struct cmr_kv *kv = &fr->meta[fr->n_meta];
    kv->key = strdup(key);
    kv->val = strdup(val ? val : "");
    if (!kv->key || !kv->val) {
        free(kv->key);
        free(kv->val);
        return CMR_ENOMEM;
    }
    fr->n_meta++;
    return CMR_OK;
}

int cmr_frame_meta_copy(struct cmr_frame *dst, const struct cmr_frame *src)
{
    if (dst == src)
        return CMR_OK;
    free_kvs(dst->meta, dst->n_meta);
    dst->n_meta = 0;
    for (int i = 0; i < src->n_meta; i++) {
        int rc = cmr_frame_meta_set(dst, src->meta[i].key, src->meta[i].val);
        if (rc != CMR_OK)
            return rc;
    }
    return CMR_OK;
}

int cmr_frame_info_get(const struct cmr_frame *fr, const char *key, double *val)
{
    for (int i = 0; i < fr->n_info; i++)
        if (strcmp(fr->info[i].key, key) == 0) {
            if (val)
                *val = fr->info[i].val;
            return 1;
        }
    return 0;
}

int cmr_frame_info_set(struct cmr_frame *fr, const char *key, double val)
{
    for (int i = 0; i < fr->n_info; i++)
        if (strcmp(fr->info[i].key, key) == 0) {
            fr->info[i].val = val;
            return CMR_OK;
        }
    if (grow((void **)&fr->info, &fr->cap_info, fr->n_info + 1, sizeof *fr->info))
        return CMR_ENOMEM;
    if (!(fr->info[fr->n_info].key = strdup(key)))
        return CMR_ENOMEM;
    fr->info[fr->n_info++].val = val;
    return CMR_OK;
}

int cmr_frame_info_copy(struct cmr_frame *dst, const struct cmr_frame *src)
{
    if (dst == src)
        return CMR_OK;
    for (int i = 0; i < dst->n_info; i++)
        free(dst->info[i].key);
    dst->n_info = 0;
    for (int i = 0; i < src->n_info; i++) {
        int rc = cmr_frame_info_set(dst, src->info[i].key, src->info[i].val);
        if (rc != CMR_OK)
            return rc;
    }
    return CMR_OK;
}

/* ------------------------------------------------------------------ */
/* the rules every frame obeys (frame.h, docs/frames.md)               */

int cmr_utf8_valid(const char *str, size_t n, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            goto invalid;
        }
        if (n - i < len)
            goto invalid;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                goto invalid;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            goto invalid;
        i += len;
    }
    return 1;
invalid:
    if (bad)
        *bad = i;
    return 0;
}

int cmr_all_finite(const float *x, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

int cmr_frame_check(const struct cmr_frame *fr, struct cmr_error *err)
{
    const char *t = fr->track ? fr->track : "?";
    if (fr->type != CMR_FRAME_TENSOR)
        return CMR_OK;
    if (fr->ndim < 1 || fr->ndim > CMR_FRAME_MAX_DIMS)
        return cmr_error_set(err, CMR_ESHAPE, "track \"%.60s\": %s frame %lld: shape should have 1 to %d "
                             "dimensions, got %d", t, fr->kind, (long long)fr->index, CMR_FRAME_MAX_DIMS,
                             fr->ndim);
    for (int i = 0; i < fr->ndim; i++)
        if (fr->shape[i] < 1)
            return cmr_error_set(err, CMR_ESHAPE, "track \"%.60s\": %s frame %lld: shape[%d] is %lld, "
                                 "every dimension should be >= 1", t, fr->kind, (long long)fr->index, i,
                                 (long long)fr->shape[i]);
    if (fr->rate != 0 && !(fr->rate >= CMR_RATE_MIN && fr->rate <= CMR_RATE_MAX))
        return cmr_error_set(err, CMR_EUNSUPPORTED, "track \"%.60s\": %s frame %lld: sample rate %g Hz is "
                             "outside the supported range %g..%g Hz", t, fr->kind, (long long)fr->index,
                             fr->rate, CMR_RATE_MIN, CMR_RATE_MAX);
    if (strcmp(fr->kind, "audio") != 0)
        return CMR_OK;
    if (fr->ndim != 2)
        return cmr_error_set(err, CMR_ESHAPE, "track \"%.60s\": audio frame %lld: shape should be "
                             "[samples, channels], got %d dimensions", t, (long long)fr->index, fr->ndim);
    if (fr->shape[1] > CMR_AUDIO_MAX_CHANNELS)
        return cmr_error_set(err, CMR_ESHAPE, "track \"%.60s\": audio frame %lld: %lld channels, the "
                             "limit is %d", t, (long long)fr->index, (long long)fr->shape[1],
                             CMR_AUDIO_MAX_CHANNELS);
    if (fr->rate == 0)
        return cmr_error_set(err, CMR_EUNSUPPORTED, "track \"%.60s\": audio frame %lld has no sample rate "
                             "(rate 0)", t, (long long)fr->index);
    size_t n = cmr_frame_numel(fr);
    if (!fr->data || cmr_all_finite(fr->data, n))
        return CMR_OK;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(fr->data[i])) {
            size_t ch = (size_t)fr->shape[1], at = (size_t)fr->offset + i / ch;
            return cmr_error_set(err, CMR_ENAN, "track \"%.60s\": audio frame %lld: sample %zu (channel %zu, "
                                 "%.6f s into the track) is %s", t, (long long)fr->index, at, i % ch,
                                 (double)at / fr->rate, isnan(fr->data[i]) ? "nan" : "infinite");
        }
    return CMR_OK;
}

/* ------------------------------------------------------------------ */
/* packing                                                             */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_kvs(msgpack_packer *pk, const struct cmr_kv *kv, int n)
{
    msgpack_pack_map(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        pack_str(pk, kv[i].key);
        pack_str(pk, kv[i].val);
    }
}

/* a string the writer is about to write: valid UTF-8, at most CMR_FRAME_MAX_STRING bytes */
static int check_str(struct cmr_error *err, const char *what, const char *s)
{
    size_t n = s ? strlen(s) : 0, bad;
    if (n > CMR_FRAME_MAX_STRING)
        return cmr_error_set(err, CMR_ETOOBIG, "frame: %s is %zu bytes long, the limit is %d", what, n,
                             CMR_FRAME_MAX_STRING);
    if (s && !cmr_utf8_valid(s, n, &bad))
        return cmr_error_set(err, CMR_ETYPE, "frame: %s \"%.40s\" is not valid UTF-8 (byte 0x%02x at offset %zu)",
                             what, s, (unsigned char)s[bad], bad);
    return CMR_OK;
}

static int check_kvs(struct cmr_error *err, const struct cmr_kv *kv, int n, const char *what)
{
    int rc = CMR_OK;
    for (int i = 0; i < n && rc == CMR_OK; i++)
        if ((rc = check_str(err, what, kv[i].key)) == CMR_OK)
            rc = check_str(err, what, kv[i].val);
    return rc;
}

static int check_for_write(const struct cmr_frame *fr, struct cmr_error *err)
{
    int rc = CMR_OK;
    switch (fr->type) {
    case CMR_FRAME_HEADER:
        for (int i = 0; i < fr->n_stages && rc == CMR_OK; i++)
            if ((rc = check_str(err, "a provenance program", fr->stages[i].program)) == CMR_OK &&
                (rc = check_str(err, "a provenance version", fr->stages[i].version)) == CMR_OK)
                rc = check_kvs(err, fr->stages[i].params, fr->stages[i].n_params, "a provenance parameter");
        return rc;
    case CMR_FRAME_TENSOR:
        if (!fr->track || !fr->kind[0])
            return cmr_error_set(err, CMR_EINVAL, "frame: tensor frame needs a kind and a track");
        if (fr->ndim < 1 || fr->ndim > CMR_FRAME_MAX_DIMS)
            return cmr_error_set(err, CMR_ESHAPE, "frame: rank should be in [1, %d], got %d",
                                 CMR_FRAME_MAX_DIMS, fr->ndim);
        if (cmr_frame_numel(fr) > fr->cap && cmr_frame_numel(fr) > 0)
            return cmr_error_set(err, CMR_ESIZE, "frame: shape larger than the data buffer");
        if ((rc = check_str(err, "the track", fr->track)) || (rc = check_str(err, "the kind", fr->kind)) ||
            (rc = check_kvs(err, fr->meta, fr->n_meta, "a metadata entry")))
            return rc;
        for (int i = 0; i < fr->n_info; i++)
            if ((rc = check_str(err, "an info key", fr->info[i].key)))
                return rc;
        return cmr_frame_check(fr, err);
    case CMR_FRAME_END:
        if (!fr->track)
            return cmr_error_set(err, CMR_EINVAL, "frame: end frame needs a track");
        if ((rc = check_str(err, "the track", fr->track)) == CMR_OK)
            rc = check_str(err, "the error", fr->error);
        return rc;
    default:
        return cmr_error_set(err, CMR_EFRAMETYPE, "frame: cannot write a frame without a type");
    }
}

static void pack_frame(msgpack_packer *pk, const struct cmr_frame *fr)
{
    switch (fr->type) {
    case CMR_FRAME_HEADER:
        msgpack_pack_map(pk, 4);
        pack_str(pk, "t");
        pack_str(pk, "header");
        pack_str(pk, "magic");
        pack_str(pk, CMR_FORMAT_MAGIC);
        pack_str(pk, "version");
        msgpack_pack_int(pk, CMR_FORMAT_VERSION);
        pack_str(pk, "provenance");
        msgpack_pack_array(pk, (size_t)fr->n_stages);
        for (int i = 0; i < fr->n_stages; i++) {
            const struct cmr_stage *s = &fr->stages[i];
            msgpack_pack_map(pk, 3);
            pack_str(pk, "program");
            pack_str(pk, s->program ? s->program : "");
            pack_str(pk, "version");
            pack_str(pk, s->version ? s->version : "");
            pack_str(pk, "params");
            pack_kvs(pk, s->params, s->n_params);
        }
        break;
    case CMR_FRAME_TENSOR: {
        size_t n = cmr_frame_numel(fr);
        msgpack_pack_map(pk, 10 + (fr->n_info > 0));
        pack_str(pk, "t");
        pack_str(pk, "tensor");
        pack_str(pk, "kind");
        pack_str(pk, fr->kind);
        pack_str(pk, "track");
        pack_str(pk, fr->track);
        pack_str(pk, "index");
        msgpack_pack_int64(pk, fr->index);
        pack_str(pk, "offset");
        msgpack_pack_int64(pk, fr->offset);
        pack_str(pk, "rate");
        msgpack_pack_double(pk, fr->rate);
        pack_str(pk, "shape");
        msgpack_pack_array(pk, (size_t)fr->ndim);
        for (int i = 0; i < fr->ndim; i++)
            msgpack_pack_int64(pk, fr->shape[i]);
        pack_str(pk, "dtype");
        pack_str(pk, "f32");
        pack_str(pk, "data");
        msgpack_pack_bin(pk, n * sizeof(float));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &fr->data[i], 4);
            u = __builtin_bswap32(u);
            msgpack_pack_bin_body(pk, &u, 4);
        }
#else
        msgpack_pack_bin_body(pk, fr->data, n * sizeof(float));
#endif
        pack_str(pk, "meta");
        pack_kvs(pk, fr->meta, fr->n_meta);
        if (fr->n_info > 0) {
            pack_str(pk, "info");
            msgpack_pack_map(pk, (size_t)fr->n_info);
            for (int i = 0; i < fr->n_info; i++) {
                pack_str(pk, fr->info[i].key);
                msgpack_pack_double(pk, fr->info[i].val);
            }
        }
        break;
    }
    case CMR_FRAME_END:
        msgpack_pack_map(pk, 3 + (fr->error != NULL));
        pack_str(pk, "t");
        pack_str(pk, "end");
        pack_str(pk, "track");
        pack_str(pk, fr->track);
        pack_str(pk, "frames");
        msgpack_pack_int64(pk, fr->frames);
        if (fr->error) {
            pack_str(pk, "error");
            pack_str(pk, fr->error);
        }
        break;
    default:
        break;
    }
}

int cmr_frame_pack(const struct cmr_frame *fr, void **buf, size_t *len)
{
    int rc = check_for_write(fr, NULL);
    if (rc != CMR_OK)
        return rc;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_frame(&pk, fr);
    if (!sb.data) /* msgpack_sbuffer_write failed to allocate */
        return CMR_ENOMEM;
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return CMR_OK;
}

/* ------------------------------------------------------------------ */
/* writer                                                              */

struct cmr_writer {
    FILE *f;
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

struct cmr_writer *cmr_writer_new(FILE *f)
{
    struct cmr_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->f = f;
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    return w;
}

int cmr_writer_put(struct cmr_writer *w, const struct cmr_frame *fr, struct cmr_error *err)
{
    int rc = check_for_write(fr, err);
    if (rc != CMR_OK)
        return rc;
    msgpack_sbuffer_clear(&w->sb);
    pack_frame(&w->pk, fr);
    if (w->sb.size && fwrite(w->sb.data, 1, w->sb.size, w->f) != w->sb.size)
        return cmr_error_set(err, CMR_EIO, "write failed: %s", strerror(errno));
    /* keep memory bounded after one huge frame */
    if (w->sb.alloc > ((size_t)16 << 20)) {
        msgpack_sbuffer_destroy(&w->sb);
        msgpack_sbuffer_init(&w->sb);
    }
    return CMR_OK;
}

int cmr_writer_flush(struct cmr_writer *w)
{
    return fflush(w->f) == 0 && !ferror(w->f) ? CMR_OK : CMR_EIO;
}

void cmr_writer_free(struct cmr_writer *w)
{
    if (!w)
        return;
    msgpack_sbuffer_destroy(&w->sb);
    free(w);
}

/* ------------------------------------------------------------------ */
/* reader                                                              */

/* where the pre-scan of the frame at buf[pos] stopped (scan_object) */
struct scan_state {
    size_t i;        /* bytes of the frame scanned: whole objects */
    size_t pending;  /* objects still to scan (the root counts 1) */
    size_t objects;  /* objects scanned so far */
};

struct cmr_reader {
    int fd;
    int is_mem;
    int is_push;          /* a cmr_decoder: fed by cmr_decoder_feed() */
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    char name[256];
    size_t max_bytes;
    unsigned char *buf;   /* bytes read and not yet consumed: buf[pos, len) */
    size_t pos, len, cap;
    int64_t consumed;     /* bytes of complete frames before buf[pos] */
    msgpack_unpacked res;
    int64_t frames;       /* frames returned so far */
    int64_t frame_start;  /* byte offset of the frame being checked */
    int failed;           /* sticky error code, 0 if none */
    int at_eof;
    char *open_track;     /* track with tensor frames and no end frame yet */
    struct scan_state scan;
};

static void scan_reset(struct scan_state *st)
{
    st->i = 0;
    st->pending = 1;
    st->objects = 0;
}

static struct cmr_reader *reader_alloc(const char *name)
{
    struct cmr_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return NULL;
    msgpack_unpacked_init(&rd->res);
    snprintf(rd->name, sizeof rd->name, "%s", name);
    rd->max_bytes = CMR_FRAME_MAX_BYTES_DEFAULT;
    rd->fd = -1;
    scan_reset(&rd->scan);
    return rd;
}

struct cmr_reader *cmr_reader_new(int fd, const char *name)
{
    struct cmr_reader *rd = reader_alloc(name ? name : "stdin");
    if (rd)
        rd->fd = fd;
    return rd;
}

struct cmr_reader *cmr_reader_new_mem(const void *buf, size_t len, const char *name)
{
    struct cmr_reader *rd = reader_alloc(name ? name : "memory");
    if (rd) {
        rd->is_mem = 1;
        rd->mem = buf;
        rd->mem_len = len;
    }
    return rd;
}

void cmr_reader_set_max_bytes(struct cmr_reader *rd, size_t max_bytes)
{
    rd->max_bytes = max_bytes;
}

int64_t cmr_reader_frame_count(const struct cmr_reader *rd) { return rd->frames; }
int64_t cmr_reader_byte_offset(const struct cmr_reader *rd) { return rd->consumed; }

void cmr_reader_free(struct cmr_reader *rd)
{
    if (!rd)
        return;
    msgpack_unpacked_destroy(&rd->res);
    free(rd->buf);
    free(rd->open_track);
    free(rd);
}

__attribute__((format(printf, 4, 5)))
static int fail(struct cmr_reader *rd, struct cmr_error *err, int code, const char *fmt, ...)
{
    char detail[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    cmr_error_set(err, code, "%s: frame %lld (byte %lld): %s", rd->name,
                  (long long)rd->frames + 1, (long long)rd->frame_start, detail);
    rd->failed = code;
    return code;
}

static int key_is(const msgpack_object *k, const char *s)
{
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

static int is_int(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

static int is_number(const msgpack_object *o)
{
    return is_int(o) || o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

static double as_double(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    default: return o->via.f64;
    }
}

/* a string value of bounded length; copied into *out (malloc'ed) */
static int get_str(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *o,
                   const char *what, char **out)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(rd, err, CMR_ETYPE, "%s should be a string", what);
    if (o->via.str.size > CMR_FRAME_MAX_STRING)
        return fail(rd, err, CMR_ETOOBIG, "%s is %u bytes long, the limit is %d", what,
                    o->via.str.size, CMR_FRAME_MAX_STRING);
    if (memchr(o->via.str.ptr, 0, o->via.str.size))
        return fail(rd, err, CMR_ETYPE, "%s contains a NUL byte", what);
    size_t bad;
    if (!cmr_utf8_valid(o->via.str.ptr, o->via.str.size, &bad))
        return fail(rd, err, CMR_ETYPE, "%s is not valid UTF-8 (byte 0x%02x at offset %zu)", what,
                    (unsigned char)o->via.str.ptr[bad], bad);
    if (!(*out = dup_n(o->via.str.ptr, o->via.str.size)))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    return CMR_OK;
}

static int get_required(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *map,
                        const char *key, const char *type, const msgpack_object **out)
{
    if (!(*out = map_get(map, key)))
        return fail(rd, err, CMR_EKEY, "%s frame has no \"%s\" key", type, key);
    return CMR_OK;
}

/* orders string keys by length, then bytes (non-string keys first) */
static int cmp_key(const void *a, const void *b)
{
    const msgpack_object *x = *(const msgpack_object *const *)a, *y = *(const msgpack_object *const *)b;
    int xs = x->type == MSGPACK_OBJECT_STR, ys = y->type == MSGPACK_OBJECT_STR;
    if (xs != ys || !xs)
        return xs - ys;
    if (x->via.str.size != y->via.str.size)
        return x->via.str.size < y->via.str.size ? -1 : 1;
    return x->via.str.size ? memcmp(x->via.str.ptr, y->via.str.ptr, x->via.str.size) : 0;
}

/* a map with a string key twice is ambiguous: refused (CMR_EKEY). Sorting
 * keeps it O(k log k) for the largest maps the bounds allow. */
static int check_unique_keys(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *map,
                             const char *what)
{
    uint32_t n = map->via.map.size;
    const msgpack_object *small[16], **k = small;
    if (n < 2)
        return CMR_OK;
    if (n > 16 && !(k = malloc(n * sizeof *k)))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        k[i] = &map->via.map.ptr[i].key;
    qsort(k, n, sizeof *k, cmp_key);
    const msgpack_object *dup = NULL;
    for (uint32_t i = 1; i < n && !dup; i++)
        if (k[i]->type == MSGPACK_OBJECT_STR && cmp_key(&k[i - 1], &k[i]) == 0)
            dup = k[i];
    if (k != small)
        free(k);
    if (dup)
        return fail(rd, err, CMR_EKEY, "%s has the key \"%.*s\" twice", what,
                    (int)(dup->via.str.size > 40 ? 40 : dup->via.str.size), dup->via.str.ptr);
    return CMR_OK;
}

/* string -> string map into kvs (meta, params) */
static int read_kvs(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *o,
                    const char *what, struct cmr_kv **kv, int *n, int *cap)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(rd, err, CMR_ETYPE, "%s should be a map", what);
    if (o->via.map.size > CMR_FRAME_MAX_ENTRIES)
        return fail(rd, err, CMR_ETOOBIG, "%s has %u entries, the limit is %d", what,
                    o->via.map.size, CMR_FRAME_MAX_ENTRIES);
    int rc0 = check_unique_keys(rd, err, o, what);
    if (rc0 != CMR_OK)
        return rc0;
    if (grow((void **)kv, cap, (int)o->via.map.size, sizeof **kv))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *p = &o->via.map.ptr[i];
        char *k = NULL, *v = NULL, wk[64], wv[64 + 40];
        snprintf(wk, sizeof wk, "a key of %s", what);
        int rc = get_str(rd, err, &p->key, wk, &k);
        if (rc == CMR_OK) {
            snprintf(wv, sizeof wv, "%s \"%.30s\"", what, k);
            rc = get_str(rd, err, &p->val, wv, &v);
        }
        if (rc != CMR_OK) {
            free(k);
            return rc;
        }
        (*kv)[*n].key = k;
        (*kv)[*n].val = v;
        (*n)++;
    }
    return CMR_OK;
}

static int decode_header(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *m,
                         struct cmr_frame *fr)
{
    const msgpack_object *o;
    int rc;
    if ((rc = get_required(rd, err, m, "magic", "header", &o)))
        return rc;
    if (!key_is(o, CMR_FORMAT_MAGIC))
        return fail(rd, err, CMR_EMAGIC, "header magic should be \"%s\"", CMR_FORMAT_MAGIC);
    if ((rc = get_required(rd, err, m, "version", "header", &o)))
        return rc;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(rd, err, CMR_ETYPE, "header version should be a positive integer");
    if (o->via.u64 > CMR_FORMAT_VERSION || o->via.u64 == 0)
        return fail(rd, err, CMR_EVERSION,
                    "stream format version %llu, this cmr reads version %d; upgrade cmr",
                    (unsigned long long)o->via.u64, CMR_FORMAT_VERSION);
    fr->type = CMR_FRAME_HEADER;
    fr->version = (int)o->via.u64;
    if ((rc = get_required(rd, err, m, "provenance", "header", &o)))
        return rc;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return fail(rd, err, CMR_ETYPE, "header provenance should be an array");
    if (o->via.array.size > CMR_FRAME_MAX_ENTRIES)
        return fail(rd, err, CMR_ETOOBIG, "provenance has %u entries, the limit is %d",
                    o->via.array.size, CMR_FRAME_MAX_ENTRIES);
    if (grow((void **)&fr->stages, &fr->cap_stages, (int)o->via.array.size, sizeof *fr->stages))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i], *v;
        if (e->type != MSGPACK_OBJECT_MAP)
            return fail(rd, err, CMR_ETYPE, "provenance entry %u should be a map", i);
        if ((rc = check_unique_keys(rd, err, e, "a provenance entry")))
            return rc;
        struct cmr_stage *s = &fr->stages[fr->n_stages];
        memset(s, 0, sizeof *s);
        fr->n_stages++;
        if ((rc = get_required(rd, err, e, "program", "provenance entry of a header", &v)) ||
            (rc = get_str(rd, err, v, "provenance program", &s->program)))
            return rc;
        if ((v = map_get(e, "version")) && (rc = get_str(rd, err, v, "provenance version", &s->version)))
            return rc;
        if ((v = map_get(e, "params")) &&
            (rc = read_kvs(rd, err, v, "provenance params", &s->params, &s->n_params, &s->cap_params)))
            return rc;
    }
    return CMR_OK;
}

static int decode_tensor(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *m,
                         struct cmr_frame *fr)
{
    const msgpack_object *o;
    int rc;
    char *s = NULL;
    fr->type = CMR_FRAME_TENSOR;
    if ((rc = get_required(rd, err, m, "kind", "tensor", &o)) || (rc = get_str(rd, err, o, "kind", &s)))
        return rc;
    if (strlen(s) >= CMR_KIND_MAX || !s[0]) {
        free(s);
        return fail(rd, err, CMR_ETYPE, "kind should be 1 to %d characters", CMR_KIND_MAX - 1);
    }
    strcpy(fr->kind, s);
    free(s);
    if ((rc = get_required(rd, err, m, "track", "tensor", &o)) ||
        (rc = get_str(rd, err, o, "track", &fr->track)))
        return rc;
    if ((o = map_get(m, "index"))) {
        if (!is_int(o) || o->via.i64 < 0)
            return fail(rd, err, CMR_ETYPE, "index should be a non-negative integer");
        fr->index = o->via.i64;
    }
    if ((o = map_get(m, "offset"))) {
        if (!is_int(o) || o->via.i64 < 0)
            return fail(rd, err, CMR_ETYPE, "offset should be a non-negative integer");
        fr->offset = o->via.i64;
    }
    if ((o = map_get(m, "rate"))) {
        if (!is_number(o) || !isfinite(as_double(o)))
            return fail(rd, err, CMR_ETYPE, "rate should be a finite number");
        fr->rate = as_double(o);
    }
    if ((rc = get_required(rd, err, m, "dtype", "tensor", &o)))
        return rc;
    if (!key_is(o, "f32"))
        return fail(rd, err, CMR_EDTYPE, "dtype should be \"f32\"");
    if ((rc = get_required(rd, err, m, "shape", "tensor", &o)))
        return rc;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return fail(rd, err, CMR_ETYPE, "shape should be an array");
    if (o->via.array.size < 1 || o->via.array.size > CMR_FRAME_MAX_DIMS)
        return fail(rd, err, CMR_ESHAPE, "shape should have 1 to %d dimensions, got %u",
                    CMR_FRAME_MAX_DIMS, o->via.array.size);
    size_t n = 1;
    int overflow = 0;
    fr->ndim = (int)o->via.array.size;
    for (int i = 0; i < fr->ndim; i++) {
        const msgpack_object *d = &o->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 == 0)
            return fail(rd, err, CMR_ESHAPE, "shape[%d] should be an integer >= 1", i);
        if (d->via.u64 > (uint64_t)INT64_MAX)
            overflow = 1;
        fr->shape[i] = (int64_t)d->via.u64;
        if (d->via.u64 && n > SIZE_MAX / sizeof(float) / d->via.u64)
            overflow = 1;
        else
            n *= (size_t)d->via.u64;
    }
    if (overflow || n > rd->max_bytes / sizeof(float))
        return fail(rd, err, CMR_ETOOBIG, "declared shape is above the limit of %zu bytes", rd->max_bytes);
    if ((rc = get_required(rd, err, m, "data", "tensor", &o)))
        return rc;
    if (o->type != MSGPACK_OBJECT_BIN)
        return fail(rd, err, CMR_ETYPE, "data should be bin");
    if ((size_t)o->via.bin.size != n * sizeof(float))
        return fail(rd, err, CMR_ESIZE, "shape needs %zu bytes of f32 data, got %u", n * sizeof(float),
                    o->via.bin.size);
    if (reserve_data(fr, n))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    if (n)
        memcpy(fr->data, o->via.bin.ptr, n * sizeof(float));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &fr->data[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&fr->data[i], &u, 4);
    }
#endif
    if ((o = map_get(m, "meta")) &&
        (rc = read_kvs(rd, err, o, "meta", &fr->meta, &fr->n_meta, &fr->cap_meta)))
        return rc;
    if ((o = map_get(m, "info"))) {
        if (o->type != MSGPACK_OBJECT_MAP)
            return fail(rd, err, CMR_ETYPE, "info should be a map");
        if (o->via.map.size > CMR_FRAME_MAX_ENTRIES)
            return fail(rd, err, CMR_ETOOBIG, "info has %u entries, the limit is %d", o->via.map.size,
                        CMR_FRAME_MAX_ENTRIES);
        if ((rc = check_unique_keys(rd, err, o, "info")))
            return rc;
        if (grow((void **)&fr->info, &fr->cap_info, (int)o->via.map.size, sizeof *fr->info))
            return fail(rd, err, CMR_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *p = &o->via.map.ptr[i];
            if (!is_number(&p->val))
                return fail(rd, err, CMR_ETYPE, "info values should be numbers");
            if ((rc = get_str(rd, err, &p->key, "an info key", &fr->info[fr->n_info].key)))
                return rc;
            fr->info[fr->n_info++].val = as_double(&p->val);
        }
    }
    struct cmr_error e = {0};
    if ((rc = cmr_frame_check(fr, &e)) != CMR_OK)
        return fail(rd, err, rc, "%s", e.msg);
    return CMR_OK;
}

static int decode_end(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *m,
                      struct cmr_frame *fr)
{
    const msgpack_object *o;
    int rc;
    fr->type = CMR_FRAME_END;
    if ((rc = get_required(rd, err, m, "track", "end", &o)) || (rc = get_str(rd, err, o, "track", &fr->track)))
        return rc;
    if ((o = map_get(m, "frames"))) {
        if (!is_int(o) || o->via.i64 < -1)
            return fail(rd, err, CMR_ETYPE, "frames should be an integer >= -1");
        fr->frames = o->via.i64;
    }
    if ((o = map_get(m, "error")) && (rc = get_str(rd, err, o, "error", &fr->error)))
        return rc;
    return CMR_OK;
}

static int decode_frame(struct cmr_reader *rd, struct cmr_error *err, const msgpack_object *m,
                        struct cmr_frame *fr)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return fail(rd, err, CMR_EROOT, "frame should be a MessagePack map");
    int rc = check_unique_keys(rd, err, m, "the frame");
    if (rc != CMR_OK)
        return rc;
    const msgpack_object *t = map_get(m, "t");
    if (!t)
        return fail(rd, err, CMR_EKEY, "frame has no \"t\" key");
    if (t->type != MSGPACK_OBJECT_STR)
        return fail(rd, err, CMR_ETYPE, "\"t\" should be a string");
    int first = rd->frames == 0;
    if (key_is(t, "header"))
        return decode_header(rd, err, m, fr);
    if (first)
        return fail(rd, err, CMR_ENOHEADER, "stream should start with a header frame");
    if (key_is(t, "tensor"))
        return decode_tensor(rd, err, m, fr);
    if (key_is(t, "end"))
        return decode_end(rd, err, m, fr);
    return fail(rd, err, CMR_EFRAMETYPE, "unknown frame type \"%.*s\"",
                (int)(t->via.str.size > 32 ? 32 : t->via.str.size), t->via.str.ptr);
}

/* track order: tensor frames of one track, then its end frame */
static int check_order(struct cmr_reader *rd, struct cmr_error *err, const struct cmr_frame *fr)
{
    if (fr->type == CMR_FRAME_HEADER) {
        if (rd->open_track)
            return fail(rd, err, CMR_EORDER, "header inside track \"%.100s\" (no end frame)", rd->open_track);
        return CMR_OK;
    }
    if (rd->open_track && strcmp(rd->open_track, fr->track) != 0)
        return fail(rd, err, CMR_EORDER, "frame of track \"%.60s\" before the end of track \"%.60s\"",
                    fr->track, rd->open_track);
    if (fr->type == CMR_FRAME_TENSOR) {
        if (!rd->open_track && !(rd->open_track = strdup(fr->track)))
            return fail(rd, err, CMR_ENOMEM, "out of memory");
    } else {
        free(rd->open_track);
        rd->open_track = NULL;
    }
    return CMR_OK;
}

/* Finds the length of the MessagePack object at p without building it, so
 * that no declared count or length can make msgpack-c allocate before the
 * bytes are there and within bounds. Only headers are visited: bin and str
 * payloads are skipped in O(1). Returns 1 and sets *len for a complete
 * object, 0 when more bytes are needed, or a negative code. The scan resumes
 * where st says it stopped (at the first incomplete object), so that feeding
 * a frame in many pieces costs no more than scanning it once; st starts at
 * scan_reset() for each frame. Both the reader and the decoder use it. */
#define MAX_OBJECTS ((size_t)1 << 20) /* objects in one frame: bounds msgpack-c's zone */

static int scan_object(struct scan_state *st, const unsigned char *p, size_t n, size_t max_bytes,
                       size_t *len)
{
    while (st->pending > 0) {
        size_t i = st->i;
        if (i >= n)
            return 0;
        unsigned b = p[i];
        size_t head = 1, body = 0, items = 0;
        int count_bytes = 0, len_bytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            head = 1;
        else if (b >= 0x80 && b <= 0x8f)
            items = 2 * (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f)
            items = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf)
            body = b & 0x1f;
        else
            switch (b) {
            case 0xc4: case 0xd9: len_bytes = 1; break;          /* bin8, str8 */
            case 0xc5: case 0xda: len_bytes = 2; break;          /* bin16, str16 */
            case 0xc6: case 0xdb: len_bytes = 4; break;          /* bin32, str32 */
            case 0xc7: len_bytes = 1; body = 1; break;           /* ext8: type byte */
            case 0xc8: len_bytes = 2; body = 1; break;
            case 0xc9: len_bytes = 4; body = 1; break;
            case 0xca: case 0xce: case 0xd2: head = 5; break;
            case 0xcb: case 0xcf: case 0xd3: head = 9; break;
            case 0xcc: case 0xd0: head = 2; break;
            case 0xcd: case 0xd1: head = 3; break;
            case 0xd4: head = 3; break;                          /* fixext 1..16 */
            case 0xd5: head = 4; break;
            case 0xd6: head = 6; break;
            case 0xd7: head = 10; break;
            case 0xd8: head = 18; break;
            case 0xdc: count_bytes = 2; break;                   /* array16 */
            case 0xdd: count_bytes = 4; break;                   /* array32 */
            case 0xde: count_bytes = -2; break;                  /* map16 */
            case 0xdf: count_bytes = -4; break;                  /* map32 */
            default: return CMR_EPARSE;                          /* 0xc1 */
            }
        int nb = len_bytes ? len_bytes : (count_bytes < 0 ? -count_bytes : count_bytes);
        if (nb) {
            if (i + 1 + (size_t)nb > n)
                return 0;
            uint64_t v = 0;
            for (int k = 0; k < nb; k++)
                v = v << 8 | p[i + 1 + k];
            head = 1 + (size_t)nb;
            if (len_bytes) {
                if (v > max_bytes)
                    return CMR_ETOOBIG;
                body += (size_t)v;
            } else {
                items = (size_t)v * (count_bytes < 0 ? 2 : 1);
            }
        }
        if (items > MAX_OBJECTS || st->objects + 1 + items > MAX_OBJECTS)
            return CMR_ETOOBIG;
        if (body > n || i + head > n - body)
            return 0;
        st->objects += 1 + items;
        st->pending += items;
        st->pending--;
        st->i = i + head + body;
    }
    *len = st->i;
    return 1;
}

static ssize_t fill(struct cmr_reader *rd, unsigned char *buf, size_t cap)
{
    if (rd->is_mem) {
        size_t n = rd->mem_len - rd->mem_pos;
        if (n > cap)
            n = cap;
        if (n)
            memcpy(buf, rd->mem + rd->mem_pos, n);
        rd->mem_pos += n;
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t n = read(rd->fd, buf, cap);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* Drops the bytes of frames already taken (when they are half the buffer, or
 * all of it: the scan state is relative to buf[pos]) and grows the buffer to
 * hold `need` more bytes. -1 when out of memory. The fd reader and the push
 * decoder share it. */
static int make_room(struct cmr_reader *rd, size_t need)
{
    if (rd->pos > 0 && (rd->pos >= rd->cap / 2 || rd->pos == rd->len)) {
        memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
        rd->len -= rd->pos;
        rd->pos = 0;
    }
    if (need > SIZE_MAX / 4 - rd->len)
        return -1;
    if (rd->cap - rd->len < need) {
        size_t cap = rd->cap ? rd->cap * 2 : 4 * READ_CHUNK;
        while (cap - rd->len < need)
            cap *= 2;
        unsigned char *b = realloc(rd->buf, cap);
        if (!b)
            return -1;
        rd->buf = b;
        rd->cap = cap;
    }
    return 0;
}

/* reads more input into the buffer; 0 at end of input */
static ssize_t read_more(struct cmr_reader *rd, struct cmr_error *err)
{
    if (make_room(rd, READ_CHUNK))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    ssize_t n = fill(rd, rd->buf + rd->len, rd->cap - rd->len);
    if (n < 0)
        return fail(rd, err, CMR_EIO, "read failed: %s", strerror(errno));
    rd->len += (size_t)n;
    return n;
}

int cmr_reader_next(struct cmr_reader *rd, struct cmr_frame *fr, struct cmr_error *err)
{
    if (rd->failed)
        return cmr_error_set(err, rd->failed, "%s: reader stopped after an earlier error", rd->name);
    cmr_frame_reset(fr);
    rd->frame_start = rd->consumed;
    size_t len = 0;
    for (;;) {
        /* no bytes yet: buf is NULL, and NULL + 0 is undefined in C (UBSan, fuzz-frame) */
        int rc = scan_object(&rd->scan, rd->buf ? rd->buf + rd->pos : rd->buf, rd->len - rd->pos, rd->max_bytes, &len);
        if (rc == CMR_EPARSE)
            return fail(rd, err, CMR_EPARSE, "bytes are not MessagePack");
        if (rc == CMR_ETOOBIG)
            return fail(rd, err, CMR_ETOOBIG, "declared length or count above the limit");
        if (rc == 1)
            break;
        if (rd->len - rd->pos > rd->max_bytes + SLACK_BYTES)
            return fail(rd, err, CMR_ETOOBIG, "frame larger than the limit of %zu bytes", rd->max_bytes);
        if (rd->at_eof)
            goto eof;
        if (rd->is_push)
            return CMR_DECODER_MORE; /* not an error: the caller feeds more */
        ssize_t n = read_more(rd, err);
        if (n < 0)
            return (int)n;
        if (n == 0)
            rd->at_eof = 1;
    }
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&rd->res, (const char *)rd->buf + rd->pos, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(&rd->res);
        return fail(rd, err, ret == MSGPACK_UNPACK_NOMEM_ERROR ? CMR_ENOMEM : CMR_EPARSE,
                    "bytes are not MessagePack");
    }
    int rc = decode_frame(rd, err, &rd->res.data, fr);
    if (rc == CMR_OK)
        rc = check_order(rd, err, fr);
    msgpack_unpacked_destroy(&rd->res); /* nothing points into the zone now */
    if (rc != CMR_OK) {
        cmr_frame_reset(fr);
        return rc;
    }
    rd->pos += len;
    rd->consumed += (int64_t)len;
    rd->frames++;
    scan_reset(&rd->scan);
    return CMR_OK;
eof:
    if (rd->len > rd->pos)
        return fail(rd, err, CMR_ETRUNCATED, "stream ends inside a frame (%zu bytes of it read)",
                    rd->len - rd->pos);
    if (rd->frames == 0)
        return fail(rd, err, CMR_ENOHEADER, "empty input: no header frame");
    if (rd->open_track)
        return fail(rd, err, CMR_ETRUNCATED, "stream ends inside track \"%.100s\" (no end frame)",
                    rd->open_track);
    return CMR_EOF;
}

/* ------------------------------------------------------------------ */
/* push-mode decoder: a reader whose buffer the caller fills           */

struct cmr_decoder {
    struct cmr_reader rd;
};

struct cmr_decoder *cmr_decoder_new(const char *name)
{
    struct cmr_reader *rd = reader_alloc(name ? name : "stream");
    if (rd)
        rd->is_push = 1;
    return (struct cmr_decoder *)rd; /* rd is the decoder's first member */
}

void cmr_decoder_set_max_bytes(struct cmr_decoder *dec, size_t max_bytes)
{
    dec->rd.max_bytes = max_bytes;
}

int cmr_decoder_feed(struct cmr_decoder *dec, const void *buf, size_t len, struct cmr_error *err)
{
    struct cmr_reader *rd = &dec->rd;
    if (rd->failed)
        return cmr_error_set(err, rd->failed, "%s: decoder stopped after an earlier error", rd->name);
    if (rd->at_eof)
        return cmr_error_set(err, CMR_ESTATE, "%s: bytes fed after the end of the stream", rd->name);
    if (len == 0)
        return CMR_OK;
    if (make_room(rd, len))
        return fail(rd, err, CMR_ENOMEM, "out of memory");
    memcpy(rd->buf + rd->len, buf, len);
    rd->len += len;
    return CMR_OK;
}

void cmr_decoder_finish(struct cmr_decoder *dec)
{
    dec->rd.at_eof = 1;
}

int cmr_decoder_next(struct cmr_decoder *dec, struct cmr_frame *fr, struct cmr_error *err)
{
    return cmr_reader_next(&dec->rd, fr, err);
}

int64_t cmr_decoder_frame_count(const struct cmr_decoder *dec)
{
    return dec->rd.frames;
}

size_t cmr_decoder_buffered(const struct cmr_decoder *dec)
{
    return dec->rd.len - dec->rd.pos;
}

void cmr_decoder_free(struct cmr_decoder *dec)
{
    if (dec)
        cmr_reader_free(&dec->rd);
}
