/* safetensors reader and writer; see safetensors.h. */
#include "safetensors.h"
#include "util/atomic.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [CMR_SAFETENSORS_F32] = {"F32", 4}, [CMR_SAFETENSORS_F64] = {"F64", 8},  [CMR_SAFETENSORS_F16] = {"F16", 2},
    [CMR_SAFETENSORS_BF16] = {"BF16", 2}, [CMR_SAFETENSORS_I64] = {"I64", 8}, [CMR_SAFETENSORS_I32] = {"I32", 4},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *cmr_safetensors_dtype_name(enum cmr_safetensors_dtype d)
{
    return (int)d >= 0 && (int)d < N_DTYPES ? dtypes[d].name : "?";
}

size_t cmr_safetensors_numel(const struct cmr_safetensors_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* ---- the header: lib/util/json.c for the safetensors schema ---- */

#define jfail cmr_json_fail

/* [u, u, ...] with at most max entries */
static int juint_array(struct cmr_json *j, uint64_t *v, int max, int *n)
{
    int rc, more;
    *n = 0;
    if ((rc = cmr_json_begin(j, '[', &more)))
        return rc;
    while (more) {
        if (*n >= max)
            return jfail(j, "array too long");
        if ((rc = cmr_json_uint(j, &v[(*n)++])) || (rc = cmr_json_next(j, ']', &more)))
            return rc;
    }
    return CMR_OK;
}

static int parse_metadata(struct cmr_json *j, struct cmr_safetensors *st)
{
    int rc, more, cap = 0;
    if ((rc = cmr_json_begin(j, '{', &more)))
        return rc;
    while (more) {
        char *k = NULL, *v = NULL;
        if ((rc = cmr_json_string(j, &k, NULL)) || (rc = cmr_json_expect(j, ':')))
            goto fail;
        if (cmr_json_peek(j) != '"') {
            rc = jfail(j, "__metadata__ values must be strings");
            goto fail;
        }
        if ((rc = cmr_json_string(j, &v, NULL)))
            goto fail;
        for (int i = 0; i < st->n_meta; i++)
            if (!strcmp(st->meta[i].key, k)) {
                rc = jfail(j, "duplicate __metadata__ key");
                goto fail;
            }
        if (st->n_meta == cap) {
            cap = cap ? 2 * cap : 8;
            struct cmr_safetensors_kv *nm = realloc(st->meta, sizeof *nm * (size_t)cap);
            if (!nm) {
                rc = cmr_error_set(j->err, CMR_ENOMEM, "%s: out of memory", j->name);
                goto fail;
            }
            st->meta = nm;
        }
        st->meta[st->n_meta].key = k;
        st->meta[st->n_meta++].val = v;
        if ((rc = cmr_json_next(j, '}', &more)))
            return rc;
        continue;
    fail:
        free(k);
        free(v);
        return rc;
    }
    return CMR_OK;
}

static int parse_tensor(struct cmr_json *j, struct cmr_safetensors_tensor *t)
{
    int rc, more, seen = 0;
    if ((rc = cmr_json_begin(j, '{', &more)))
        return rc;
    while (more) {
        char *k = NULL;
        if ((rc = cmr_json_string(j, &k, NULL)) || (rc = cmr_json_expect(j, ':'))) {
            free(k);
            return rc;
        }
        if (!strcmp(k, "dtype") && !(seen & 1)) {
            char *d = NULL;
            seen |= 1;
            if ((rc = cmr_json_string(j, &d, NULL))) {
                free(k);
                return rc;
            }
            int found = -1;
            for (int i = 0; i < N_DTYPES; i++)
                if (!strcmp(d, dtypes[i].name))
                    found = i;
            if (found < 0) {
                cmr_error_set(j->err, CMR_EDTYPE,
                              "%s: tensor '%s' has dtype %s (cmr reads F32, F64, F16, BF16, I64, I32)",
                              j->name, t->name, d);
                free(d);
                free(k);
                return CMR_EDTYPE;
            }
            t->dtype = (enum cmr_safetensors_dtype)found;
            free(d);
        } else if (!strcmp(k, "shape") && !(seen & 2)) {
            uint64_t v[CMR_SAFETENSORS_MAX_DIMS];
            seen |= 2;
            if ((rc = juint_array(j, v, CMR_SAFETENSORS_MAX_DIMS, &t->ndim))) {
                free(k);
                return rc;
            }
            for (int i = 0; i < t->ndim; i++)
                t->shape[i] = (int64_t)v[i];
        } else if (!strcmp(k, "data_offsets") && !(seen & 4)) {
            uint64_t v[2];
            int n;
            seen |= 4;
            if ((rc = juint_array(j, v, 2, &n))) {
                free(k);
                return rc;
            }
            if (n != 2) {
                free(k);
                return jfail(j, "data_offsets needs two integers");
            }
            t->begin = v[0];
            t->end = v[1];
        } else {
            free(k);
            return jfail(j, "unexpected or repeated key in a tensor entry");
        }
        free(k);
        if ((rc = cmr_json_next(j, '}', &more)))
            return rc;
    }
    if (seen != 7)
        return cmr_error_set(j->err, CMR_EFORMAT,
                             "%s: tensor '%s' lacks dtype, shape or data_offsets", j->name, t->name);
    return CMR_OK;
}

static int parse_header(struct cmr_json *j, struct cmr_safetensors *st)
{
    int rc, more, cap = 0, seen_meta = 0;
    if ((rc = cmr_json_begin(j, '{', &more)))
        return rc;
    while (more) {
        char *k = NULL;
        if ((rc = cmr_json_string(j, &k, NULL)))
            return rc;
        if ((rc = cmr_json_expect(j, ':'))) {
            free(k);
            return rc;
        }
        if (!strcmp(k, "__metadata__")) {
            free(k);
            if (seen_meta++)
                return jfail(j, "duplicate __metadata__");
            if ((rc = parse_metadata(j, st)))
                return rc;
        } else {
            if (strlen(k) > CMR_SAFETENSORS_MAX_NAME) {
                free(k);
                return jfail(j, "tensor name too long");
            }
            if (cmr_safetensors_find(st, k)) {
                cmr_error_set(j->err, CMR_EFORMAT, "%s: tensor '%s' appears twice", j->name, k);
                free(k);
                return CMR_EFORMAT;
            }
            if (st->n_tensors == cap) {
                struct cmr_safetensors_tensor *nt =
                    realloc(st->tensors, sizeof *nt * (size_t)(cap = cap ? 2 * cap : 16));
                if (!nt) {
                    free(k);
                    return cmr_error_set(j->err, CMR_ENOMEM, "%s: out of memory", j->name);
                }
                st->tensors = nt;
            }
            struct cmr_safetensors_tensor *t = &st->tensors[st->n_tensors++];
            memset(t, 0, sizeof *t);
            t->name = k;
            if ((rc = parse_tensor(j, t)))
                return rc;
        }
        if ((rc = cmr_json_next(j, '}', &more)))
            return rc;
    }
    (void)cmr_json_peek(j);
    if (j->i != j->n)
        return jfail(j, "trailing characters after the header object");
    return CMR_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const struct cmr_safetensors_tensor *x = *(const struct cmr_safetensors_tensor *const *)a;
    const struct cmr_safetensors_tensor *y = *(const struct cmr_safetensors_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* each tensor's range is dtype x shape bytes, inside the data area, and no two overlap */
static int check_ranges(struct cmr_safetensors *st, const char *file, struct cmr_error *err)
{
    for (int i = 0; i < st->n_tensors; i++) {
        struct cmr_safetensors_tensor *t = &st->tensors[i];
        uint64_t n = dtypes[t->dtype].size;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] != 0 && n > UINT64_MAX / (uint64_t)t->shape[d])
                return cmr_error_set(err, CMR_EFORMAT, "%s: tensor '%s': shape too large", file,
                                     t->name);
            n *= (uint64_t)t->shape[d];
        }
        if (t->end < t->begin || t->end - t->begin != n)
            return cmr_error_set(err, CMR_EFORMAT,
                                 "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                                 "] hold %" PRIu64 " bytes, dtype x shape needs %" PRIu64,
                                 file, t->name, t->begin, t->end,
                                 t->end >= t->begin ? t->end - t->begin : 0, n);
        if (t->end > st->data_len)
            return cmr_error_set(err, CMR_ETRUNCATED,
                                 "%s: tensor '%s' ends at byte %" PRIu64
                                 " of the data but the file holds %zu (truncated?)",
                                 file, t->name, t->end, st->data_len);
    }
    if (st->n_tensors < 2)
        return CMR_OK;
    const struct cmr_safetensors_tensor **order = malloc(sizeof *order * (size_t)st->n_tensors);
    if (!order)
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", file);
    for (int i = 0; i < st->n_tensors; i++)
        order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n_tensors, sizeof *order, cmp_begin);
    int rc = CMR_OK;
    const struct cmr_safetensors_tensor *last = order[0]; /* the one reaching furthest so far */
    for (int i = 1; i < st->n_tensors; i++) {
        if (order[i]->end > order[i]->begin && order[i]->begin < last->end) {
            rc = cmr_error_set(err, CMR_EFORMAT, "%s: tensors '%s' and '%s' overlap", file,
                               last->name, order[i]->name);
            break;
        }
        if (order[i]->end > last->end)
            last = order[i];
    }
    free(order);
    return rc;
}

void cmr_safetensors_free(struct cmr_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].val);
    }
    free(st->tensors);
    free(st->meta);
    free(st->data);
    free(st);
}

int cmr_safetensors_parse(const void *buf, size_t len, const char *name,
                          struct cmr_safetensors **out, struct cmr_error *err)
{
    const unsigned char *b = buf;
    *out = NULL;
    if (len < 8)
        return cmr_error_set(err, CMR_ETRUNCATED,
                             "%s: not a safetensors file (%zu bytes, shorter than the 8-byte header length)",
                             name, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | b[i];
    if (n < 2 || n > CMR_SAFETENSORS_MAX_HEADER)
        return cmr_error_set(err, CMR_EFORMAT,
                             "%s: not a safetensors file (header length %" PRIu64
                             " outside [2, %" PRIu64 "])",
                             name, n, CMR_SAFETENSORS_MAX_HEADER);
    if (n > len - 8)
        return cmr_error_set(err, CMR_ETRUNCATED,
                             "%s: header of %" PRIu64 " bytes but only %zu follow (truncated?)", name,
                             n, len - 8);
    if (b[8] != '{')
        return cmr_error_set(err, CMR_EFORMAT, "%s: not a safetensors file (header is not a JSON object)",
                             name);
    struct cmr_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", name);
    struct cmr_json j;
    cmr_json_init(&j, (const char *)b + 8, (size_t)n, name, CMR_JSON_AT_BYTE, 8, err);
    j.context = "safetensors header";
    int rc = parse_header(&j, st);
    if (!rc) {
        st->data_len = len - 8 - (size_t)n;
        rc = check_ranges(st, name, err);
    }
    if (!rc && st->data_len) {
        st->data = malloc(st->data_len);
        if (!st->data)
            rc = cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", name);
        else
            memcpy(st->data, b + 8 + n, st->data_len);
    }
    if (rc) {
        cmr_safetensors_free(st);
        return rc;
    }
    *out = st;
    return CMR_OK;
}

int cmr_safetensors_read(const char *path, struct cmr_safetensors **out, struct cmr_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return cmr_error_set(err, CMR_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory (%zu bytes)", path, len);
    }
    size_t got = fread(buf, 1, len, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != len) {
        free(buf);
        return cmr_error_set(err, CMR_EIO, "%s: read failed", path);
    }
    int rc = cmr_safetensors_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

const struct cmr_safetensors_tensor *cmr_safetensors_find(const struct cmr_safetensors *st,
                                                          const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *cmr_safetensors_meta(const struct cmr_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[i].key, key))
            return st->meta[i].val;
    return NULL;
}

static float half_to_float(uint16_t h)
{
    int e = h >> 10 & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 0x400), e - 25);
    return h & 0x8000 ? -v : v;
}

void cmr_safetensors_get(const struct cmr_safetensors *st, const struct cmr_safetensors_tensor *t,
                         float *dst)
{
    const unsigned char *p = st->data + t->begin;
    size_t n = cmr_safetensors_numel(t);
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case CMR_SAFETENSORS_F32: {
            float v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = v;
            break;
        }
        case CMR_SAFETENSORS_F64: {
            double v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
            break;
        }
        case CMR_SAFETENSORS_F16: {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            dst[i] = half_to_float(v);
            break;
        }
        case CMR_SAFETENSORS_BF16: {
            uint16_t v;
            uint32_t u;
            memcpy(&v, p + 2 * i, 2);
            u = (uint32_t)v << 16;
            memcpy(&dst[i], &u, 4);
            break;
        }
        case CMR_SAFETENSORS_I64: {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
            break;
        }
        case CMR_SAFETENSORS_I32: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
            break;
        }
        }
    }
}

/* ---- writer ---- */

struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* a JSON string literal (UTF-8 passed through, control characters escaped) */
static void sb_json(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            sb_fmt(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

int cmr_safetensors_write(const char *path, const struct cmr_safetensors_out *tensors, int n_tensors,
                          const struct cmr_safetensors_kv *meta, int n_meta, struct cmr_error *err)
{
    struct sbuf h = {0};
    uint64_t off = 0;
    sb_str(&h, "{");
    if (n_meta > 0) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                sb_str(&h, ",");
            sb_json(&h, meta[i].key);
            sb_str(&h, ":");
            sb_json(&h, meta[i].val);
        }
        sb_str(&h, "}");
    }
    for (int i = 0; i < n_tensors; i++) {
        const struct cmr_safetensors_out *t = &tensors[i];
        uint64_t n = 4;
        for (int d = 0; d < t->ndim; d++)
            n *= (uint64_t)t->shape[d];
        if (i || n_meta > 0)
            sb_str(&h, ",");
        sb_json(&h, t->name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++)
            sb_fmt(&h, "%s%" PRId64, d ? "," : "", t->shape[d]);
        sb_fmt(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + n);
        off += n;
    }
    sb_str(&h, "}");
    while (!h.oom && h.len % 8)
        sb_str(&h, " ");
    if (h.oom) {
        free(h.s);
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    }
    struct cmr_atomic a;
    int rc = cmr_atomic_open(&a, path, CMR_ATOMIC_STREAM, err);
    if (rc) {
        free(h.s);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int bad = fwrite(len8, 1, 8, a.f) != 8 || fwrite(h.s, 1, h.len, a.f) != h.len;
    free(h.s);
    for (int i = 0; i < n_tensors && !bad; i++) {
        size_t n = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            n *= (size_t)tensors[i].shape[d];
        bad = fwrite(tensors[i].data, 4, n, a.f) != n;
    }
    if (bad) {
        cmr_error_set(err, CMR_EIO, "%s: write failed: %s", path, strerror(errno));
        cmr_atomic_abort(&a);
        return CMR_EIO;
    }
    return cmr_atomic_commit(&a, err);
}
