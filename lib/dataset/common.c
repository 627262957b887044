/* see common.h */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset/common.h"
#include "util/alloc.h"

struct cmr_dataset_cfg cmr_dataset_cfg_default(void)
{
    return (struct cmr_dataset_cfg){.check = 1, .subset = "small", .seed = 0, .split = {70, 15, 15},
                                    .min_tracks = 4, .name = "msd", .top = 50};
}

void cmr_ds_init(struct cmr_ds *d, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                 struct cmr_error *err)
{
    *d = (struct cmr_ds){.cfg = cfg, .out = out, .err = err};
}

void cmr_ds_free(struct cmr_ds *d)
{
    free(d->root);
    d->root = NULL;
}

static void note(struct cmr_ds *d, enum cmr_dataset_level level, const char *fmt, va_list ap)
{
    if (d->out->note)
        d->out->note(d->out->ctx, level, fmt, ap);
}

void cmr_ds_info(struct cmr_ds *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note(d, CMR_DATASET_INFO, fmt, ap);
    va_end(ap);
}

void cmr_ds_warn(struct cmr_ds *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note(d, CMR_DATASET_WARN, fmt, ap);
    va_end(ap);
}

int cmr_ds_fail(struct cmr_ds *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (d->err) {
        vsnprintf(d->err->msg, sizeof d->err->msg, fmt, ap);
        d->err->code = CMR_EFORMAT;
    }
    va_end(ap);
    return CMR_EFORMAT;
}

int cmr_ds_fail_io(struct cmr_ds *d, const char *path)
{
    return cmr_error_set(d->err, CMR_EIO, "%s: %s", path, strerror(errno));
}

int cmr_ds_read_file(struct cmr_ds *d, const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cmr_ds_fail_io(d, path);
    char *p = NULL;
    size_t n = 0, cap = 0, k;
    char chunk[65536];
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cmr_grow(&p, &cap, n + k + 1, 1, d->err)) {
            free(p);
            fclose(f);
            return CMR_ENOMEM;
        }
        memcpy(p + n, chunk, k);
        n += k;
    }
    if (ferror(f)) {
        int rc = cmr_error_set(d->err, CMR_EIO, "%s: read error: %s", path, strerror(errno));
        free(p);
        fclose(f);
        return rc;
    }
    fclose(f);
    if (!p && !(p = cmr_mallocn(1, 1, d->err)))
        return CMR_ENOMEM;
    p[n] = 0;
    *text = p;
    *len = n;
    return CMR_OK;
}

int cmr_ds_set_root(struct cmr_ds *d, const char *dir)
{
    char real[PATH_MAX];
    free(d->root);
    d->root = cmr_strdup(realpath(dir, real) ? real : dir, d->err);
    if (!d->root)
        return CMR_ENOMEM;
    size_t n = strlen(d->root);
    while (n > 1 && d->root[n - 1] == '/')
        d->root[--n] = 0;
    return CMR_OK;
}

int cmr_ds_set_root_beside(struct cmr_ds *d, const char *file)
{
    if (d->cfg->audio)
        return cmr_ds_set_root(d, d->cfg->audio);
    char *dir = cmr_strdup(file, d->err), *slash;
    if (!dir)
        return CMR_ENOMEM;
    if ((slash = strrchr(dir, '/')))
        *slash = 0;
    else
        strcpy(dir, ".");
    int rc = cmr_ds_set_root(d, dir);
    free(dir);
    return rc;
}

char *cmr_ds_path(struct cmr_ds *d, const char *rel)
{
    if (rel[0] == '/')
        return cmr_strdup(rel, d->err);
    return cmr_asprintf(d->err, "%s/%s", d->root, rel);
}

int cmr_ds_header(struct cmr_ds *d, const char *columns)
{
    return d->out->header ? d->out->header(d->out->ctx, columns, d->err) : CMR_OK;
}

int cmr_ds_check_field(struct cmr_ds *d, const char *what, const char *v, const char *where)
{
    for (const char *p = v; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r')
            return cmr_ds_fail(d, "%s: %s '%.60s' holds a tab or a newline, which a track list cannot carry",
                               where, what, v);
    return CMR_OK;
}

int cmr_ds_emit(struct cmr_ds *d, const char *path, const char *track, const char *const *values, int n,
                const char *where, int check)
{
    int rc;
    if (check && access(path, R_OK) != 0) {
        d->missing++;
        cmr_ds_info(d, "track %s: %s: %s, left out", track, path, strerror(errno));
        return 0;
    }
    if ((rc = cmr_ds_check_field(d, "path", path, where)) || (rc = cmr_ds_check_field(d, "track id", track, where)))
        return rc;
    for (int i = 0; i < n; i++)
        if ((rc = cmr_ds_check_field(d, "value", values[i], where)))
            return rc;
    if ((rc = d->out->row(d->out->ctx, path, track, values, n, d->err)))
        return rc;
    return 1;
}

void cmr_ds_report_missing(struct cmr_ds *d)
{
    if (d->missing)
        cmr_ds_warn(d, "%ld track%s left out: audio file missing or unreadable (-v lists them; --no-check keeps "
                    "them)", d->missing, d->missing == 1 ? "" : "s");
}

int cmr_ds_csv_next(struct cmr_ds *d, struct cmr_csv *c)
{
    int rc = cmr_csv_next(c, d->err);
    if (rc == CMR_EOF)
        return 0;
    return rc < 0 ? rc : 1;
}

/* ---- the map ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t map_slot(const struct cmr_ds_map *m, const char *k)
{
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k))
        i = (i + 1) & (m->cap - 1);
    return i;
}

const char *cmr_ds_map_get(const struct cmr_ds_map *m, const char *k)
{
    if (!m->cap)
        return NULL;
    size_t i = map_slot(m, k);
    return m->key[i] ? m->val[i] : NULL;
}

static int map_rehash(struct cmr_ds *d, struct cmr_ds_map *m)
{
    struct cmr_ds_map big = {.cap = m->cap ? 2 * m->cap : 1024};
    big.key = cmr_callocn(big.cap, sizeof *big.key, d->err);
    big.val = cmr_callocn(big.cap, sizeof *big.val, d->err);
    if (!big.key || !big.val) {
        free(big.key);
        free(big.val);
        return CMR_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = map_slot(&big, m->key[i]);
            big.key[j] = m->key[i];
            big.val[j] = m->val[i];
        }
    big.n = m->n;
    free(m->key);
    free(m->val);
    *m = big;
    return CMR_OK;
}

int cmr_ds_map_put(struct cmr_ds *d, struct cmr_ds_map *m, const char *k, const char *v)
{
    if (2 * (m->n + 1) > m->cap && map_rehash(d, m))
        return CMR_ENOMEM;
    size_t i = map_slot(m, k);
    if (m->key[i])
        return 1;
    char *key = cmr_strdup(k, d->err), *val = cmr_strdup(v ? v : "", d->err);
    if (!key || !val) {
        free(key);
        free(val);
        return CMR_ENOMEM;
    }
    m->key[i] = key;
    m->val[i] = val;
    m->n++;
    return 0;
}

void cmr_ds_map_free(struct cmr_ds_map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->key[i]);
        free(m->val[i]);
    }
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

int cmr_ds_read_id_paths(struct cmr_ds *d, const char *path, struct cmr_ds_map *m)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cmr_ds_fail_io(d, path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = CMR_OK;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t')) {
            rc = cmr_ds_fail(d, "%s:%ld: expected two tab-separated fields: id, path", path, lineno);
            break;
        }
        *tab = 0;
        if ((rc = cmr_ds_map_put(d, m, line, tab + 1)) == 1)
            rc = cmr_ds_fail(d, "%s:%ld: id '%.40s' listed twice", path, lineno, line);
    }
    if (!rc && ferror(f))
        rc = cmr_error_set(d->err, CMR_EIO, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

/* ---- strings ---- */

int cmr_ds_buf_put(struct cmr_ds *d, struct cmr_ds_buf *b, const char *s, size_t n)
{
    if (cmr_grow(&b->p, &b->cap, b->n + n + 1, 1, d->err))
        return CMR_ENOMEM;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return CMR_OK;
}

int cmr_ds_buf_clear(struct cmr_ds *d, struct cmr_ds_buf *b)
{
    b->n = 0;
    return cmr_ds_buf_put(d, b, "", 0);
}

int cmr_ds_buf_item(struct cmr_ds *d, struct cmr_ds_buf *b, char sep, const char *s)
{
    if (b->n && cmr_ds_buf_put(d, b, &sep, 1))
        return CMR_ENOMEM;
    return cmr_ds_buf_put(d, b, s, strlen(s));
}

int cmr_ds_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}
