/* MagnaTagATune (Law et al. 2009): annotations_final.csv, tab-separated and
 * quoted: clip_id, 188 tags (0 or 1), mp3_path. The cfg.top most frequent
 * tags; the split by folder: 0-b training, c validation, d-f test. See
 * dataset.h. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/common.h"
#include "util/alloc.h"

struct tagcount {
    int col;
    long count;
};

static int cmp_tagcount(const void *a, const void *b)
{
    const struct tagcount *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->col - y->col;
}

struct row {
    char *id, *mp3;
    uint8_t *tags;
    long line;
};

struct mtat {
    struct cmr_ds d;
    const char *csv_path;
    struct cmr_csv c;
    int ncol, n_tags;
    char **names;          /* the tags, in header order */
    struct tagcount *cnt;  /* how often each is 1 */
    uint8_t *use;          /* the top ones */
    struct row *rows;
    size_t n_rows, cap_rows;
};

/* the header: clip_id, tags..., mp3_path */
static int read_header(struct mtat *m)
{
    const char *p = m->csv_path;
    int rc = cmr_ds_csv_next(&m->d, &m->c);
    if (rc <= 0)
        return rc < 0 ? rc : cmr_ds_fail(&m->d, "%s: empty file", p);
    int ncol = m->ncol = m->c.n;
    if (ncol < 3 || strcmp(m->c.field[0], "clip_id") || strcmp(m->c.field[ncol - 1], "mp3_path"))
        return cmr_ds_fail(&m->d, "%s:1: expected a tab-separated header clip_id, tags..., mp3_path "
                           "(is this annotations_final.csv?)", p);
    m->n_tags = ncol - 2;
    if (!(m->names = cmr_callocn((size_t)m->n_tags, sizeof *m->names, m->d.err)) ||
        !(m->cnt = cmr_callocn((size_t)m->n_tags, sizeof *m->cnt, m->d.err)))
        return CMR_ENOMEM;
    for (int t = 0; t < m->n_tags; t++) {
        if (!(m->names[t] = cmr_strdup(m->c.field[t + 1], m->d.err)))
            return CMR_ENOMEM;
        if (strchr(m->names[t], ','))
            return cmr_ds_fail(&m->d, "%s:1: tag '%s' holds a comma", p, m->names[t]);
        m->cnt[t].col = t;
    }
    return CMR_OK;
}

/* pass 1: one record into m->rows, and the tag counts */
static int read_row(struct mtat *m)
{
    const char *p = m->csv_path;
    long line = m->c.line;
    if (m->c.n != m->ncol)
        return cmr_ds_fail(&m->d, "%s:%ld: %d fields, the header has %d", p, line, m->c.n, m->ncol);
    if (cmr_grow(&m->rows, &m->cap_rows, m->n_rows + 1, sizeof *m->rows, m->d.err))
        return CMR_ENOMEM;
    struct row *r = &m->rows[m->n_rows++];
    *r = (struct row){.line = line};
    if (!(r->id = cmr_strdup(m->c.field[0], m->d.err)) ||
        !(r->mp3 = cmr_strdup(m->c.field[m->ncol - 1], m->d.err)) ||
        !(r->tags = cmr_mallocn((size_t)m->n_tags, 1, m->d.err)))
        return CMR_ENOMEM;
    for (int t = 0; t < m->n_tags; t++) {
        const char *v = m->c.field[t + 1];
        if (strcmp(v, "0") && strcmp(v, "1"))
            return cmr_ds_fail(&m->d, "%s:%ld: tag '%s' should be 0 or 1, got '%.20s'", p, line, m->names[t], v);
        r->tags[t] = v[0] == '1';
        m->cnt[t].count += r->tags[t];
    }
    if (!r->mp3[0])
        return cmr_ds_fail(&m->d, "%s:%ld: empty mp3_path", p, line);
    return CMR_OK;
}

/* pass 2: the row of r, with the tags in use */
static int write_row(struct mtat *m, const struct row *r, struct cmr_ds_buf *tl, long counts[3])
{
    static const char *const splits[3] = {"training", "validation", "test"};
    /* the folder: the path's first character, 0-9a-f */
    int ch = tolower((unsigned char)r->mp3[0]), s, rc;
    if (r->mp3[1] != '/' || !isxdigit(ch))
        return cmr_ds_fail(&m->d, "%s:%ld: mp3_path should start with a folder 0-9 or a-f, got '%.60s'",
                           m->csv_path, r->line, r->mp3);
    s = ch <= 'b' ? 0 : ch == 'c' ? 1 : 2; /* '0'-'9' sort before 'a' */
    if ((rc = cmr_ds_buf_clear(&m->d, tl)))
        return rc;
    for (int t = 0; t < m->n_tags; t++) /* tags in the order of the header */
        if (m->use[t] && r->tags[t] && (rc = cmr_ds_buf_item(&m->d, tl, ',', m->names[t])))
            return rc;
    char *path = cmr_ds_path(&m->d, r->mp3), where[4200];
    if (!path)
        return CMR_ENOMEM;
    snprintf(where, sizeof where, "%s:%ld", m->csv_path, r->line);
    const char *cols[2] = {splits[s], tl->p};
    rc = cmr_ds_emit(&m->d, path, r->id, cols, 2, where, m->d.cfg->check);
    free(path);
    if (rc < 0)
        return rc;
    counts[s] += rc;
    return CMR_OK;
}

static void mtat_free(struct mtat *m)
{
    for (size_t i = 0; i < m->n_rows; i++) {
        free(m->rows[i].id);
        free(m->rows[i].mp3);
        free(m->rows[i].tags);
    }
    free(m->rows);
    for (int t = 0; m->names && t < m->n_tags; t++)
        free(m->names[t]);
    free(m->names);
    free(m->cnt);
    free(m->use);
    cmr_csv_free(&m->c);
    cmr_ds_free(&m->d);
}

int cmr_dataset_mtat(const char *csv, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                     struct cmr_error *err)
{
    struct mtat m = {.csv_path = csv};
    cmr_ds_init(&m.d, cfg, out, err);
    char *text = NULL;
    size_t len;
    struct cmr_ds_buf tl = {0};
    long counts[3] = {0}, top = cfg->top;
    int rc = cmr_ds_read_file(&m.d, csv, &text, &len);
    if (rc)
        return rc;
    cmr_csv_init(&m.c, text, len, '\t', csv);
    if ((rc = read_header(&m)))
        goto out;
    while ((rc = cmr_ds_csv_next(&m.d, &m.c)) > 0)
        if (!(m.c.n == 1 && !m.c.field[0][0]) && (rc = read_row(&m)))
            goto out;
    if (rc < 0)
        goto out;
    if (top > m.n_tags)
        top = m.n_tags;
    qsort(m.cnt, (size_t)m.n_tags, sizeof *m.cnt, cmp_tagcount);
    if (!(m.use = cmr_callocn((size_t)m.n_tags, 1, err))) {
        rc = CMR_ENOMEM;
        goto out;
    }
    for (long t = 0; t < top; t++)
        m.use[m.cnt[t].col] = 1;
    if ((rc = cmr_ds_set_root_beside(&m.d, csv)) || (rc = cmr_ds_header(&m.d, "path\ttrack\tsplit\ttags")))
        goto out;
    for (size_t i = 0; i < m.n_rows; i++)
        if ((rc = write_row(&m, &m.rows[i], &tl, counts)))
            goto out;
    cmr_ds_report_missing(&m.d);
    cmr_ds_info(&m.d, "top %ld tags; %ld training, %ld validation, %ld test clips", top, counts[0], counts[1],
                counts[2]);
out:
    mtat_free(&m);
    free(tl.p);
    free(text);
    return rc;
}
