/* The MSD tagging split in musicnn's layout (Pons and Serra 2019):
 * index_NAME.tsv (id<TAB>path), {train,val,test}_gt_NAME.tsv
 * (id<TAB>[0, 1, ...]) and output_labels_NAME.txt (the tag names as a
 * Python list, or one a line). See dataset.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/common.h"
#include "util/alloc.h"

struct msd {
    struct cmr_ds d;
    struct cmr_ds_map index; /* id -> audio path */
    char **tags;
    size_t n_tags, cap_tags;
    long counts[3], no_index;
};

static int add_tag(struct msd *m, const char *name)
{
    if (cmr_grow(&m->tags, &m->cap_tags, m->n_tags + 1, sizeof *m->tags, m->d.err) ||
        !(m->tags[m->n_tags] = cmr_strdup(name, m->d.err)))
        return CMR_ENOMEM;
    m->n_tags++;
    return CMR_OK;
}

/* NAME = ['a', 'b', ...] from p (just after the '[') */
static int parse_list(struct msd *m, const char *path, char *p)
{
    int rc;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ','))
            p++;
        if (*p == ']')
            return CMR_OK;
        if (*p != '\'' && *p != '"')
            return cmr_ds_fail(&m->d, "%s: expected a quoted tag name in the list", path);
        char q = *p++;
        char *end = strchr(p, q);
        if (!end)
            return cmr_ds_fail(&m->d, "%s: unterminated tag name", path);
        *end = 0;
        if ((rc = add_tag(m, p)))
            return rc;
        p = end + 1;
    }
}

/* output_labels_NAME.txt: "# comment" lines, then NAME = ['a','b',...] (or one name a line) */
static int read_label_names(struct msd *m, const char *path)
{
    size_t len;
    char *text, *lb = NULL;
    int rc = cmr_ds_read_file(&m->d, path, &text, &len);
    if (rc)
        return rc;
    /* the first '[' outside a comment line */
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (line[0] != '#' && (lb = strchr(line, '[')) && (!nl || lb < nl))
            break;
        lb = NULL;
        line = nl ? nl + 1 : NULL;
    }
    if (lb) {
        rc = parse_list(m, path, lb + 1);
    } else { /* one tag name a line */
        for (char *save = NULL, *t = strtok_r(text, "\r\n", &save); t && !rc; t = strtok_r(NULL, "\r\n", &save))
            if (t[0] != '#' && t[0])
                rc = add_tag(m, t);
    }
    free(text);
    if (!rc && m->n_tags == 0)
        rc = cmr_ds_fail(&m->d, "%s: no tag names", path);
    for (size_t i = 0; !rc && i < m->n_tags; i++)
        if (strchr(m->tags[i], ',') || !m->tags[i][0])
            rc = cmr_ds_fail(&m->d, "%s: tag name '%s' is empty or holds a comma", path, m->tags[i]);
    return rc;
}

/* "id<TAB>[0, 1, ...]" (NUL-terminated, the tab is at tab) -> the tags that are 1, comma-separated */
static int parse_gt_line(struct msd *m, const char *gt_path, long lineno, char *tab, struct cmr_ds_buf *tl)
{
    char *p = strchr(tab + 1, '[');
    int n_tags = (int)m->n_tags, rc;
    if (!p)
        return cmr_ds_fail(&m->d, "%s:%ld: expected a bracketed list of %d values", gt_path, lineno, n_tags);
    p++;
    if ((rc = cmr_ds_buf_clear(&m->d, tl)))
        return rc;
    int k = 0;
    for (;;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ']')
            break;
        char *end;
        double v = strtod(p, &end);
        if (end == p || k >= n_tags || (v != 0 && v != 1))
            return cmr_ds_fail(&m->d, "%s:%ld: expected %d values of 0 or 1", gt_path, lineno, n_tags);
        if (v == 1 && (rc = cmr_ds_buf_item(&m->d, tl, ',', m->tags[k])))
            return rc;
        k++;
        p = end;
    }
    if (k != n_tags)
        return cmr_ds_fail(&m->d, "%s:%ld: %d values, the tag list has %d", gt_path, lineno, k, n_tags);
    return CMR_OK;
}

/* one line of a _gt_ file: a row, or a track left out */
static int gt_line(struct msd *m, const char *gt_path, const char *split, long lineno, char *line,
                   struct cmr_ds_buf *tl, long *count)
{
    char *tab = strchr(line, '\t');
    int rc;
    if (!tab || tab == line)
        return cmr_ds_fail(&m->d, "%s:%ld: expected id<TAB>[0, 1, ...]", gt_path, lineno);
    *tab = 0;
    if ((rc = parse_gt_line(m, gt_path, lineno, tab, tl)))
        return rc;
    const char *rel = cmr_ds_map_get(&m->index, line);
    if (!rel) {
        m->no_index++;
        cmr_ds_info(&m->d, "%s:%ld: id %s is not in the index, left out", gt_path, lineno, line);
        return CMR_OK;
    }
    char *path = cmr_ds_path(&m->d, rel), where[4200];
    if (!path)
        return CMR_ENOMEM;
    snprintf(where, sizeof where, "%s:%ld", gt_path, lineno);
    const char *cols[2] = {split, tl->p};
    rc = cmr_ds_emit(&m->d, path, line, cols, 2, where, m->d.cfg->check);
    free(path);
    if (rc < 0)
        return rc;
    *count += rc;
    return CMR_OK;
}

static int read_split(struct msd *m, const char *gt_path, const char *split, long *count)
{
    FILE *f = fopen(gt_path, "r");
    if (!f)
        return cmr_ds_fail_io(&m->d, gt_path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    struct cmr_ds_buf tl = {0};
    int rc = CMR_OK;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len > 0)
            rc = gt_line(m, gt_path, split, lineno, line, &tl, count);
    }
    if (!rc && ferror(f))
        rc = cmr_error_set(m->d.err, CMR_EIO, "%s: read error", gt_path);
    free(tl.p);
    free(line);
    fclose(f);
    return rc;
}

int cmr_dataset_msd(const char *dir, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                    struct cmr_error *err)
{
    static const char *const files[3] = {"train", "val", "test"};
    static const char *const splits[3] = {"training", "validation", "test"};
    struct msd m = {0};
    cmr_ds_init(&m.d, cfg, out, err);
    char *index_path = cmr_asprintf(err, "%s/index_%s.tsv", dir, cfg->name);
    char *labels_path = cmr_asprintf(err, "%s/output_labels_%s.txt", dir, cfg->name);
    int rc = index_path && labels_path ? CMR_OK : CMR_ENOMEM;
    if (rc || (rc = cmr_ds_read_id_paths(&m.d, index_path, &m.index)) || (rc = read_label_names(&m, labels_path)) ||
        (rc = cmr_ds_set_root(&m.d, cfg->audio ? cfg->audio : dir)) ||
        (rc = cmr_ds_header(&m.d, "path\ttrack\tsplit\ttags")))
        goto out;
    for (int s = 0; s < 3 && !rc; s++) {
        char *gt = cmr_asprintf(err, "%s/%s_gt_%s.tsv", dir, files[s], cfg->name);
        rc = gt ? read_split(&m, gt, splits[s], &m.counts[s]) : CMR_ENOMEM;
        free(gt);
    }
    if (rc)
        goto out;
    if (m.no_index)
        cmr_ds_warn(&m.d, "%ld track%s of the splits not in %s, left out", m.no_index, m.no_index == 1 ? "" : "s",
                    index_path);
    cmr_ds_report_missing(&m.d);
    cmr_ds_info(&m.d, "%zu tags; %ld training, %ld validation, %ld test tracks", m.n_tags, m.counts[0],
                m.counts[1], m.counts[2]);
out:
    for (size_t i = 0; i < m.n_tags; i++)
        free(m.tags[i]);
    free(m.tags);
    cmr_ds_map_free(&m.index);
    cmr_ds_free(&m.d);
    free(index_path);
    free(labels_path);
    return rc;
}
