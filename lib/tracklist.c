#include "tracklist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cmr_tracklist_init(struct cmr_tracklist *tl)
{
    memset(tl, 0, sizeof *tl);
}

void cmr_tracklist_free(struct cmr_tracklist *tl)
{
    if (!tl)
        return;
    for (size_t i = 0; i < tl->n; i++) {
        struct cmr_track_entry *e = &tl->entries[i];
        free(e->path);
        free(e->track);
        if (e->values)
            for (int k = 0; k < tl->n_meta; k++)
                free(e->values[k]);
        free(e->values);
    }
    free(tl->entries);
    for (int k = 0; k < tl->n_meta; k++)
        free(tl->meta_keys[k]);
    free(tl->meta_keys);
    cmr_tracklist_init(tl);
}

static struct cmr_track_entry *new_entry(struct cmr_tracklist *tl)
{
    struct cmr_track_entry *e;
    if (tl->n == tl->cap) {
        size_t cap = tl->cap ? tl->cap * 2 : 64;
        struct cmr_track_entry *p = realloc(tl->entries, cap * sizeof *p);
        if (!p)
            return NULL;
        tl->entries = p;
        tl->cap = cap;
    }
    e = &tl->entries[tl->n++];
    memset(e, 0, sizeof *e);
    if (tl->n_meta) {
        e->values = calloc((size_t)tl->n_meta, sizeof *e->values);
        if (!e->values) {
            tl->n--;
            return NULL;
        }
    }
    return e;
}

int cmr_tracklist_add(struct cmr_tracklist *tl, const char *path, const char *track,
                      struct cmr_error *err)
{
    size_t bad;
    if (!cmr_utf8_valid(track, strlen(track), &bad))
        return cmr_error_set(err, CMR_EFORMAT, "track id '%.*s...' is not valid UTF-8 (byte 0x%02x at "
                             "offset %zu); give the file in a track list (cmr-decode --list) with a UTF-8 "
                             "'track' column", (int)(bad > 100 ? 100 : bad), track,
                             (unsigned char)track[bad], bad);
    struct cmr_track_entry *e = new_entry(tl);
    if (!e)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    e->line = (long)tl->n;
    e->path = strdup(path);
    e->track = strdup(track);
    for (int k = 0; k < tl->n_meta; k++)
        e->values[k] = strdup("");
    if (!e->path || !e->track)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    for (int k = 0; k < tl->n_meta; k++)
        if (!e->values[k])
            return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    return CMR_OK;
}

static int cmp_track(const void *a, const void *b)
{
    const struct cmr_track_entry *x = *(const struct cmr_track_entry *const *)a;
    const struct cmr_track_entry *y = *(const struct cmr_track_entry *const *)b;
    int c = strcmp(x->track, y->track);
    if (c)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

int cmr_tracklist_check_unique(const struct cmr_tracklist *tl, const char *name,
                               struct cmr_error *err)
{
    const struct cmr_track_entry **v;
    int rc = CMR_OK;

    if (tl->n < 2)
        return CMR_OK;
    v = malloc(tl->n * sizeof *v);
    if (!v)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    for (size_t i = 0; i < tl->n; i++)
        v[i] = &tl->entries[i];
    qsort(v, tl->n, sizeof *v, cmp_track);
    for (size_t i = 1; i < tl->n; i++)
        if (strcmp(v[i - 1]->track, v[i]->track) == 0) {
            rc = cmr_error_set(err, CMR_EFORMAT, "%s: duplicate track id '%.200s' (lines %ld and %ld)",
                               name, v[i]->track, v[i - 1]->line, v[i]->line);
            break;
        }
    free(v);
    return rc;
}

int cmr_tracklist_set_meta(const struct cmr_tracklist *tl, size_t i, struct cmr_frame *fr)
{
    int rc;
    if (i >= tl->n)
        return CMR_EINVAL;
    for (int k = 0; k < tl->n_meta; k++)
        if ((rc = cmr_frame_meta_set(fr, tl->meta_keys[k], tl->entries[i].values[k])) != CMR_OK)
            return rc;
    return CMR_OK;
}

/* splits line (modified in place) at TABs; returns the field count, or -1 if
 * there are more than max fields */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        char *t = strchr(p, '\t');
        if (n == max)
            return -1;
        fields[n++] = p;
        if (!t)
            break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

static char *resolve(const char *base_dir, const char *path)
{
    size_t nb, np;
    char *s;
    if (!base_dir || !*base_dir || path[0] == '/' || strcmp(base_dir, ".") == 0)
        return strdup(path);
    nb = strlen(base_dir);
    np = strlen(path);
    s = malloc(nb + np + 2);
    if (!s)
        return NULL;
    memcpy(s, base_dir, nb);
    s[nb] = '/';
    memcpy(s + nb + 1, path, np + 1);
    return s;
}

/* the columns the header names */
struct columns {
    int ncol, path_col, track_col;
    int *meta_col; /* per column: its metadata key's index, or -1 (path, track) */
};

static int parse_header(struct cmr_tracklist *tl, char **fields, int nf, ssize_t len, const char *name,
                        struct columns *k, struct cmr_error *err)
{
    size_t bad;
    if (len == 0)
        return cmr_error_set(err, CMR_EFORMAT, "%s:1: empty header line (want column names, one of them 'path')",
                             name);
    if (nf < 0)
        return cmr_error_set(err, CMR_EFORMAT, "%s:1: more than %d columns", name, CMR_TRACKLIST_MAX_COLUMNS);
    k->ncol = nf;
    k->meta_col = malloc((size_t)k->ncol * sizeof *k->meta_col);
    tl->meta_keys = calloc((size_t)k->ncol, sizeof *tl->meta_keys);
    if (!k->meta_col || !tl->meta_keys)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    for (int c = 0; c < k->ncol; c++) {
        k->meta_col[c] = -1;
        if (!*fields[c])
            return cmr_error_set(err, CMR_EFORMAT, "%s:1: column %d has an empty name", name, c + 1);
        if (strlen(fields[c]) > CMR_FRAME_MAX_STRING)
            return cmr_error_set(err, CMR_EFORMAT, "%s:1: column %d: name too long", name, c + 1);
        if (!cmr_utf8_valid(fields[c], strlen(fields[c]), &bad))
            return cmr_error_set(err, CMR_EFORMAT, "%s:1: column %d: name is not valid UTF-8 "
                                 "(byte 0x%02x at offset %zu)", name, c + 1, (unsigned char)fields[c][bad], bad);
        for (int d = 0; d < c; d++)
            if (strcmp(fields[c], fields[d]) == 0)
                return cmr_error_set(err, CMR_EFORMAT, "%s:1: column '%.100s' appears twice", name, fields[c]);
        if (strcmp(fields[c], "path") == 0)
            k->path_col = c;
        else if (strcmp(fields[c], "track") == 0)
            k->track_col = c;
        else {
            k->meta_col[c] = tl->n_meta;
            if (!(tl->meta_keys[tl->n_meta++] = strdup(fields[c])))
                return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
        }
    }
    if (k->path_col < 0)
        return cmr_error_set(err, CMR_EFORMAT,
                             "%s:1: no 'path' column in the header (a TSV header line naming "
                             "the columns, one of them 'path', is required)", name);
    return CMR_OK;
}

static int parse_row(struct cmr_tracklist *tl, char **fields, int nf, long lineno, const char *name,
                     const char *base_dir, const struct columns *k, struct cmr_error *err)
{
    int ncol = k->ncol, path_col = k->path_col, track_col = k->track_col;
    size_t bad;
    if (nf != ncol)
        return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: %d fields, the header has %d (fields are separated by one TAB)",
                             name, lineno, nf < 0 ? CMR_TRACKLIST_MAX_COLUMNS + 1 : nf, ncol);
    if (!*fields[path_col])
        return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: empty path", name, lineno);
    if (track_col >= 0 && !*fields[track_col])
        return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: empty track id", name, lineno);
    for (int c = 0; c < ncol; c++) {
        if (strlen(fields[c]) > CMR_FRAME_MAX_STRING)
            return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: field %d longer than %d bytes", name, lineno, c + 1,
                                 CMR_FRAME_MAX_STRING);
        /* what goes into frames must be UTF-8; a path only when it is the track id */
        if ((c != path_col || track_col < 0) && !cmr_utf8_valid(fields[c], strlen(fields[c]), &bad))
            return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: column '%.40s': '%.*s' is not valid UTF-8 "
                                 "(byte 0x%02x at offset %zu)%s", name, lineno,
                                 c == path_col ? "path" : c == track_col ? "track" : tl->meta_keys[k->meta_col[c]],
                                 (int)(bad > 100 ? 100 : bad), fields[c], (unsigned char)fields[c][bad], bad,
                                 c == path_col ? " (without a 'track' column the path is the track id)" : "");
    }
    struct cmr_track_entry *e = new_entry(tl);
    if (!e)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    e->line = lineno;
    e->path = resolve(base_dir, fields[path_col]);
    e->track = strdup(fields[track_col >= 0 ? track_col : path_col]);
    if (!e->path || !e->track)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    for (int c = 0; c < ncol; c++)
        if (k->meta_col[c] >= 0 && !(e->values[k->meta_col[c]] = strdup(fields[c])))
            return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
    return CMR_OK;
}

static int parse_stream(struct cmr_tracklist *tl, FILE *f, const char *name,
                        const char *base_dir, struct cmr_error *err)
{
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long lineno = 0;
    char *fields[CMR_TRACKLIST_MAX_COLUMNS + 1];
    struct columns k = {0, -1, -1, NULL};
    int rc = CMR_OK;

    while (!rc && (len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        if ((size_t)len > CMR_TRACKLIST_MAX_LINE) {
            rc = cmr_error_set(err, CMR_EFORMAT, "%s:%ld: line longer than %zu bytes", name,
                               lineno, CMR_TRACKLIST_MAX_LINE);
            break;
        }
        if (memchr(line, '\0', (size_t)len)) {
            rc = cmr_error_set(err, CMR_EFORMAT, "%s:%ld: NUL byte: not a text file", name, lineno);
            break;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0 && k.ncol > 0)
            continue;   /* empty line */
        int nf = split_tabs(line, fields, CMR_TRACKLIST_MAX_COLUMNS);
        if (k.ncol == 0)
            rc = parse_header(tl, fields, nf, len, name, &k, err);
        else
            rc = parse_row(tl, fields, nf, lineno, name, base_dir, &k, err);
    }
    if (!rc && ferror(f))
        rc = cmr_error_set(err, CMR_EIO, "%s: read error: %s", name, strerror(errno));
    else if (!rc && k.ncol == 0)
        rc = cmr_error_set(err, CMR_EFORMAT, "%s: empty list (want a header line with a 'path' column)", name);
    else if (!rc)
        rc = cmr_tracklist_check_unique(tl, name, err);
    free(line);
    free(k.meta_col);
    if (rc != CMR_OK)
        cmr_tracklist_free(tl);
    return rc;
}

int cmr_tracklist_parse(struct cmr_tracklist *tl, const char *buf, size_t len,
                        const char *name, const char *base_dir, struct cmr_error *err)
{
    FILE *f;
    int rc;
    cmr_tracklist_init(tl);
    if (len == 0)
        return cmr_error_set(err, CMR_EFORMAT, "%s: empty list (want a header line with a 'path' column)", name);
    f = fmemopen((void *)buf, len, "r");
    if (!f)
        return cmr_error_set(err, CMR_ENOMEM, "tracklist: fmemopen: %s", strerror(errno));
    rc = parse_stream(tl, f, name, base_dir, err);
    fclose(f);
    return rc;
}

int cmr_tracklist_read(struct cmr_tracklist *tl, const char *path, struct cmr_error *err)
{
    FILE *f;
    char *dir = NULL;
    int rc;

    cmr_tracklist_init(tl);
    if (strcmp(path, "-") == 0)
        f = stdin;
    else if (!(f = fopen(path, "r")))
        return cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(errno));
    if (f != stdin) {
        const char *slash = strrchr(path, '/');
        if (slash) {
            size_t n = (size_t)(slash - path);
            dir = malloc(n + 2);
            if (!dir) {
                fclose(f);
                return cmr_error_set(err, CMR_ENOMEM, "tracklist: out of memory");
            }
            if (n == 0)
                n = 1;  /* "/list.tsv": the root */
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    rc = parse_stream(tl, f, path, dir, err);
    free(dir);
    if (f != stdin)
        fclose(f);
    return rc;
}
