/* FMA (Defferrard et al. 2017): fma_metadata/tracks.csv, three header rows
 * (top-level names, second-level names, "track_id") and quoted multi-line
 * fields; the tracks of a subset with their (set, split) and (track,
 * genre_top); audio ROOT/000/000002.mp3. See dataset.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset/common.h"
#include "util/alloc.h"

/* known files of fma_small without audio */
static const char *const fma_broken[] = {"099134", "108925", "133297"};

int cmr_dataset_fma_subset(const char *s)
{
    if (!strcmp(s, "small"))
        return 0;
    if (!strcmp(s, "medium"))
        return 1;
    if (!strcmp(s, "large"))
        return 2;
    return -1;
}

struct fma {
    struct cmr_ds d;
    const char *csv_path;
    struct cmr_csv c;
    char **top, **sub; /* the first two header rows */
    int ncol;
    int c_split, c_subset, c_genre;
    int want; /* the subset's rank */
    long kept, broken, no_genre;
};

/* a copy of the record's fields (f->ncol of them); freed by fma_free */
static int copy_row(struct fma *f, char ***out)
{
    char **v = cmr_callocn((size_t)f->ncol, sizeof *v, f->d.err);
    if (!(*out = v))
        return CMR_ENOMEM;
    for (int i = 0; i < f->ncol; i++)
        if (!(v[i] = cmr_strdup(f->c.field[i], f->d.err)))
            return CMR_ENOMEM;
    return CMR_OK;
}

/* the three header rows, then the columns this reader needs */
static int read_header(struct fma *f)
{
    const char *p = f->csv_path;
    int rc;
    for (int h = 0; h < 3; h++) {
        if ((rc = cmr_ds_csv_next(&f->d, &f->c)) < 0)
            return rc;
        if (!rc)
            return cmr_ds_fail(&f->d, "%s: %s, expected 3 header rows", p,
                               h ? "ends inside the header" : "empty file");
        if (h == 0) {
            f->ncol = f->c.n;
            if ((rc = copy_row(f, &f->top)))
                return rc;
        } else if (h == 1) {
            if (f->c.n != f->ncol)
                return cmr_ds_fail(&f->d, "%s:%ld: %d fields, the first header row has %d", p, f->c.line, f->c.n,
                                   f->ncol);
            if ((rc = copy_row(f, &f->sub)))
                return rc;
        } else if (strcmp(f->c.field[0], "track_id")) {
            return cmr_ds_fail(&f->d, "%s:%ld: expected the third header row to start with 'track_id', got "
                               "'%.40s' (is this fma_metadata/tracks.csv?)", p, f->c.line, f->c.field[0]);
        }
    }
    f->c_split = f->c_subset = f->c_genre = -1;
    for (int i = 0; i < f->ncol; i++) {
        if (!strcmp(f->top[i], "set") && !strcmp(f->sub[i], "split"))
            f->c_split = i;
        else if (!strcmp(f->top[i], "set") && !strcmp(f->sub[i], "subset"))
            f->c_subset = i;
        else if (!strcmp(f->top[i], "track") && !strcmp(f->sub[i], "genre_top"))
            f->c_genre = i;
    }
    if (f->c_split < 0 || f->c_subset < 0 || f->c_genre < 0)
        return cmr_ds_fail(&f->d, "%s: the header has no column%s%s%s", p, f->c_split < 0 ? " (set, split)" : "",
                           f->c_subset < 0 ? " (set, subset)" : "", f->c_genre < 0 ? " (track, genre_top)" : "");
    return CMR_OK;
}

/* ROOT/fma_metadata/tracks.csv -> ROOT/fma_SUBSET */
static int set_root(struct fma *f)
{
    if (f->d.cfg->audio)
        return cmr_ds_set_root(&f->d, f->d.cfg->audio);
    char *dir = cmr_strdup(f->csv_path, f->d.err), *slash, *dflt;
    if (!dir)
        return CMR_ENOMEM;
    if ((slash = strrchr(dir, '/')))
        *slash = 0;
    else
        strcpy(dir, ".");
    dflt = cmr_asprintf(f->d.err, "%s/../fma_%s", dir, f->d.cfg->subset);
    free(dir);
    if (!dflt)
        return CMR_ENOMEM;
    int rc = cmr_ds_set_root(&f->d, dflt);
    free(dflt);
    return rc;
}

/* one record of the body */
static int track(struct fma *f)
{
    const char *p = f->csv_path;
    long line = f->c.line;
    if (f->c.n != f->ncol)
        return cmr_ds_fail(&f->d, "%s:%ld: %d fields, the header has %d", p, line, f->c.n, f->ncol);
    const char *id = f->c.field[0], *sset = f->c.field[f->c_subset];
    char *end;
    errno = 0;
    long tid = strtol(id, &end, 10);
    if (!*id || *end || errno || tid < 0 || tid > 999999)
        return cmr_ds_fail(&f->d, "%s:%ld: track_id should be an integer in [0, 999999], got '%.40s'", p, line, id);
    int rank = cmr_dataset_fma_subset(sset);
    if (rank < 0)
        return cmr_ds_fail(&f->d, "%s:%ld: (set, subset) should be small, medium or large, got '%.40s'", p, line,
                           sset);
    if (rank > f->want)
        return CMR_OK;
    char tid6[16], rel[32], where[64], tidstr[16];
    snprintf(tid6, sizeof tid6, "%06ld", tid);
    for (size_t k = 0; k < sizeof fma_broken / sizeof *fma_broken; k++)
        if (!strcmp(tid6, fma_broken[k])) {
            cmr_ds_warn(&f->d, "track %s: a known FMA file without audio, left out", tid6);
            f->broken++;
            return CMR_OK;
        }
    const char *split = f->c.field[f->c_split], *genre = f->c.field[f->c_genre];
    if (strcmp(split, "training") && strcmp(split, "validation") && strcmp(split, "test"))
        return cmr_ds_fail(&f->d, "%s:%ld: (set, split) should be training, validation or test, got '%.40s'", p,
                           line, split);
    if (!*genre) {
        f->no_genre++;
        cmr_ds_info(&f->d, "track %s: no genre_top, left out", tid6);
        return CMR_OK;
    }
    snprintf(rel, sizeof rel, "%.3s/%s.mp3", tid6, tid6);
    snprintf(where, sizeof where, "%s:%ld", p, line);
    snprintf(tidstr, sizeof tidstr, "%ld", tid);
    char *path = cmr_ds_path(&f->d, rel);
    if (!path)
        return CMR_ENOMEM;
    const char *cols[2] = {split, genre};
    int rc = cmr_ds_emit(&f->d, path, tidstr, cols, 2, where, f->d.cfg->check);
    free(path);
    if (rc < 0)
        return rc;
    f->kept += rc;
    return CMR_OK;
}

static void fma_free(struct fma *f)
{
    for (int i = 0; i < f->ncol; i++) {
        if (f->top)
            free(f->top[i]);
        if (f->sub)
            free(f->sub[i]);
    }
    free(f->top);
    free(f->sub);
    cmr_csv_free(&f->c);
    cmr_ds_free(&f->d);
}

int cmr_dataset_fma(const char *tracks_csv, const struct cmr_dataset_cfg *cfg,
                    const struct cmr_dataset_sink *out, struct cmr_error *err)
{
    struct fma f = {.csv_path = tracks_csv, .want = cmr_dataset_fma_subset(cfg->subset)};
    cmr_ds_init(&f.d, cfg, out, err);
    if (f.want < 0)
        return cmr_error_set(err, CMR_EINVAL, "fma: the subset should be small, medium or large, got '%s'",
                             cfg->subset);
    char *text = NULL;
    size_t len;
    int rc = cmr_ds_read_file(&f.d, tracks_csv, &text, &len);
    if (rc)
        return rc;
    cmr_csv_init(&f.c, text, len, ',', tracks_csv);
    if ((rc = read_header(&f)) || (rc = set_root(&f)) || (rc = cmr_ds_header(&f.d, "path\ttrack\tsplit\tlabel")))
        goto out;
    while ((rc = cmr_ds_csv_next(&f.d, &f.c)) > 0) {
        if (f.c.n == 1 && !f.c.field[0][0])
            continue; /* an empty line */
        if ((rc = track(&f)))
            goto out;
    }
    if (rc < 0)
        goto out;
    if (f.no_genre)
        cmr_ds_warn(&f.d, "%ld track%s without genre_top left out", f.no_genre, f.no_genre == 1 ? "" : "s");
    cmr_ds_report_missing(&f.d);
    cmr_ds_info(&f.d, "%ld tracks of fma_%s written, %ld known broken left out", f.kept, cfg->subset, f.broken);
    rc = CMR_OK;
out:
    fma_free(&f);
    free(text);
    return rc;
}
