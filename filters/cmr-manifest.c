/* cmr-manifest: the real layouts of the paper's data sets -> the track-list
 * TSV that cmr-decode --list reads (see docs/evaluation.md#data-sets)
 *
 *   cmr-manifest fma   FMA_METADATA/tracks.csv [--audio DIR] [--subset small]
 *   cmr-manifest irmas IRMAS-TrainingData [--seed S] [--split 70/15/15]
 *   cmr-manifest aotm  aotm2011_playlists.json MAP [--audio DIR] [--min-tracks 4]
 *   cmr-manifest msd   INDEX_DIR [--audio DIR] [--name msd]
 *   cmr-manifest mtat  annotations_final.csv [--audio DIR] [--top 50]
 *
 * Output (stdout): a header line, then one line per track; columns
 * path, track, then split, label, tags or playlists as the set has them.
 * Every reader is deterministic: the same files give the same list. */
#define _GNU_SOURCE /* vasprintf */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util/csv.h"
#include "util/json.h"
#include "util/rng.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-manifest SET [OPTION]... INPUT...\n"
        "Write the track list (TSV) that cmr-decode --list reads, from the layout a\n"
        "data set is distributed in. Columns: path, track, then split, label, tags\n"
        "or playlists. Paths are absolute when the audio directory exists.\n"
        "\n"
        "Sets:\n"
        "  fma TRACKS_CSV       FMA: fma_metadata/tracks.csv (3 header rows, quoted\n"
        "                       multi-line fields); tracks of --subset with their\n"
        "                       (set, split) and (track, genre_top); audio\n"
        "                       DIR/000/000002.mp3. Known audio-less files of\n"
        "                       fma_small (099134, 108925, 133297) are skipped.\n"
        "                       columns: path track split label\n"
        "  irmas DIR            IRMAS training data: DIR/<class>/*.wav, label = the\n"
        "                       folder; split per class, seeded, grouping the\n"
        "                       excerpts of one recording (\"..__1.wav\", \"..__2.wav\")\n"
        "                       columns: path track split label\n"
        "  aotm JSON MAP        AOTM-2011: aotm2011_playlists.json (mix_id,\n"
        "                       filtered_lists) and MAP, a TSV without header:\n"
        "                       MSD id<TAB>audio path (relative to --audio)\n"
        "                       columns: path track playlists\n"
        "  msd INDEX_DIR        MSD tagging split in musicnn's layout:\n"
        "                       index_NAME.tsv (id<TAB>path), {train,val,test}_gt_NAME.tsv\n"
        "                       (id<TAB>[0, 1, ...]), output_labels_NAME.txt (the tag\n"
        "                       names as a Python list)\n"
        "                       columns: path track split tags\n"
        "  mtat ANNOTATIONS     MagnaTagATune annotations_final.csv (tab-separated,\n"
        "                       quoted: clip_id, 188 tags, mp3_path); the --top most\n"
        "                       frequent tags; split by folder: 0-b training,\n"
        "                       c validation, d-f test\n"
        "                       columns: path track split tags\n"
        "\n"
        "Options:\n"
        "  -a, --audio DIR      audio root [fma: TRACKS_CSV/../../fma_SUBSET;\n"
        "                       aotm: MAP's folder; msd: INDEX_DIR; mtat: the\n"
        "                       annotations' folder]\n"
        "      --subset NAME    fma: small, medium or large [small] (a larger\n"
        "                       subset includes the smaller ones)\n"
        "  -s, --seed S         irmas: split seed [0]\n"
        "      --split A/B/C    irmas: training/validation/test percentages [70/15/15]\n"
        "      --min-tracks N   aotm: keep playlists with at least N tracks that have\n"
        "                       audio [4] (1..100000)\n"
        "      --name NAME      msd: the index files' suffix [msd] (mtt for musicnn's\n"
        "                       MagnaTagATune index)\n"
        "      --top N          mtat: number of tags [50] (1..188)\n"
        "      --no-check       do not check that the audio files exist (by default\n"
        "                       a missing file is left out, with a count on stderr)\n"
        "  -q, --quiet          no warnings\n"
        "  -v, --verbose        one line per left-out track\n"
        "  -h, --help           this help\n"
        "\n"
        "Exit status: 0 ok, 1 a file is missing or malformed (the message names the\n"
        "file and line), 2 usage.\n");
    exit(code);
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        cli_die(CLI_EXIT_DATA, "out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        cli_die(CLI_EXIT_DATA, "out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        cli_die(CLI_EXIT_DATA, "out of memory");
    return d;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        cli_die(CLI_EXIT_DATA, "out of memory");
    return s;
}

/* a growable byte buffer */
struct buf {
    char *p;
    size_t n, cap;
};

static void buf_put(struct buf *b, char c)
{
    if (b->n + 1 >= b->cap) {
        b->cap = b->cap ? 2 * b->cap : 256;
        b->p = xrealloc(b->p, b->cap);
    }
    b->p[b->n++] = c;
    b->p[b->n] = 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die(CLI_EXIT_DATA, "%s: %s", path, strerror(errno));
    struct buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.n + n + 1 > b.cap) {
            b.cap = (b.n + n + 1) * 2;
            b.p = xrealloc(b.p, b.cap);
        }
        memcpy(b.p + b.n, chunk, n);
        b.n += n;
    }
    if (ferror(f))
        cli_die(CLI_EXIT_DATA, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (!b.p)
        b.p = xmalloc(1);
    b.p[b.n] = 0;
    *len = b.n;
    return b.p;
}

/* string -> string map (open addressing) */
struct map {
    char **key, **val;
    size_t n, cap;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static size_t map_slot(const struct map *m, const char *k)
{
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static const char *map_get(const struct map *m, const char *k)
{
    if (!m->cap)
        return NULL;
    size_t i = map_slot(m, k);
    return m->key[i] ? m->val[i] : NULL;
}

/* returns 0 when added, 1 when the key was there (value kept) */
static int map_put(struct map *m, const char *k, const char *v)
{
    if (2 * (m->n + 1) > m->cap) {
        struct map big = {.cap = m->cap ? 2 * m->cap : 1024};
        big.key = calloc(big.cap, sizeof *big.key);
        big.val = calloc(big.cap, sizeof *big.val);
        if (!big.key || !big.val)
            cli_die(CLI_EXIT_DATA, "out of memory");
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
    }
    size_t i = map_slot(m, k);
    if (m->key[i])
        return 1;
    m->key[i] = xstrdup(k);
    m->val[i] = xstrdup(v ? v : "");
    m->n++;
    return 0;
}

static void map_free(struct map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->key[i]);
        free(m->val[i]);
    }
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ------------------------------------------------------------------ */
/* output                                                              */

static int g_check = 1;
static long g_missing;

static char *g_audio_root; /* absolute when it exists */

static void set_audio_root(const char *dir)
{
    char real[PATH_MAX];
    free(g_audio_root);
    if (realpath(dir, real))
        g_audio_root = xstrdup(real);
    else
        g_audio_root = xstrdup(dir);
    size_t n = strlen(g_audio_root);
    while (n > 1 && g_audio_root[n - 1] == '/')
        g_audio_root[--n] = 0;
}

/* the path of an audio file given relative to the audio root (or absolute) */
static char *audio_path(const char *rel)
{
    if (rel[0] == '/')
        return xstrdup(rel);
    return xasprintf("%s/%s", g_audio_root, rel);
}

/* a field must fit in the list's plain TSV */
static void check_field(const char *what, const char *v, const char *where)
{
    for (const char *p = v; *p; p++)
        if (*p == '\t' || *p == '\n' || *p == '\r')
            cli_die(CLI_EXIT_DATA, "%s: %s '%.60s' holds a tab or a newline, which a track list cannot carry",
                    where, what, v);
}

/* 1 when the row was written, 0 when its file is missing (and --no-check is off) */
static int emit(const char *path, const char *track, const char *const *cols, int n_cols, const char *where)
{
    if (g_check && access(path, R_OK) != 0) {
        g_missing++;
        cli_info("track %s: %s: %s, left out", track, path, strerror(errno));
        return 0;
    }
    check_field("path", path, where);
    check_field("track id", track, where);
    fputs(path, stdout);
    putchar('\t');
    fputs(track, stdout);
    for (int i = 0; i < n_cols; i++) {
        check_field("value", cols[i], where);
        putchar('\t');
        fputs(cols[i], stdout);
    }
    putchar('\n');
    return 1;
}

static void report_missing(void)
{
    if (g_missing)
        cli_warn("%ld track%s left out: audio file missing or unreadable (-v lists them; --no-check keeps them)",
                 g_missing, g_missing == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ */
/* CSV: lib/util/csv.c; an error ends the program                       */

/* reads the next record; 0 at end of input */
static int csv_next(struct cmr_csv *c)
{
    struct cmr_error err = {0};
    int rc = cmr_csv_next(c, &err);
    if (rc < 0)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    return rc == CMR_OK;
}

/* ------------------------------------------------------------------ */
/* FMA                                                                 */

static int subset_rank(const char *s)
{
    if (!strcmp(s, "small"))
        return 0;
    if (!strcmp(s, "medium"))
        return 1;
    if (!strcmp(s, "large"))
        return 2;
    return -1;
}

static const char *const fma_broken[] = {"099134", "108925", "133297"};

static int run_fma(const char *csv_path, const char *audio, const char *subset)
{
    int want = subset_rank(subset);
    if (want < 0)
        cli_usage_error("--subset takes small, medium or large, got '%s'", subset);
    size_t len;
    char *text = read_file(csv_path, &len);
    struct cmr_csv c;
    cmr_csv_init(&c, text, len, ',', csv_path);
    char **top = NULL, **sub = NULL;
    int ncol = 0;
    /* the three header rows: top-level names, second-level names, "track_id" */
    for (int h = 0; h < 3; h++) {
        if (!csv_next(&c))
            cli_die(CLI_EXIT_DATA, "%s: %s, expected 3 header rows", csv_path,
                    h ? "ends inside the header" : "empty file");
        if (h == 0) {
            ncol = c.n;
            top = xmalloc(sizeof *top * (size_t)ncol);
            for (int i = 0; i < ncol; i++)
                top[i] = xstrdup(c.field[i]);
        } else if (h == 1) {
            if (c.n != ncol)
                cli_die(CLI_EXIT_DATA, "%s:%ld: %d fields, the first header row has %d", csv_path, c.line,
                        c.n, ncol);
            sub = xmalloc(sizeof *sub * (size_t)ncol);
            for (int i = 0; i < ncol; i++)
                sub[i] = xstrdup(c.field[i]);
        } else if (strcmp(c.field[0], "track_id")) {
            cli_die(CLI_EXIT_DATA, "%s:%ld: expected the third header row to start with 'track_id', got '%.40s' "
                    "(is this fma_metadata/tracks.csv?)", csv_path, c.line, c.field[0]);
        }
    }
    int c_split = -1, c_subset = -1, c_genre = -1;
    for (int i = 0; i < ncol; i++) {
        if (!strcmp(top[i], "set") && !strcmp(sub[i], "split"))
            c_split = i;
        else if (!strcmp(top[i], "set") && !strcmp(sub[i], "subset"))
            c_subset = i;
        else if (!strcmp(top[i], "track") && !strcmp(sub[i], "genre_top"))
            c_genre = i;
    }
    if (c_split < 0 || c_subset < 0 || c_genre < 0)
        cli_die(CLI_EXIT_DATA, "%s: the header has no column%s%s%s", csv_path,
                c_split < 0 ? " (set, split)" : "", c_subset < 0 ? " (set, subset)" : "",
                c_genre < 0 ? " (track, genre_top)" : "");

    char *dflt = NULL;
    if (!audio) {
        /* ROOT/fma_metadata/tracks.csv -> ROOT/fma_SUBSET */
        char *dir = xstrdup(csv_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            strcpy(dir, ".");
        dflt = xasprintf("%s/../fma_%s", dir, subset);
        free(dir);
        audio = dflt;
    }
    set_audio_root(audio);
    puts("path\ttrack\tsplit\tlabel");
    long kept = 0, broken = 0, no_genre = 0;
    while (csv_next(&c)) {
        if (c.n == 1 && !c.field[0][0])
            continue; /* an empty line */
        if (c.n != ncol)
            cli_die(CLI_EXIT_DATA, "%s:%ld: %d fields, the header has %d", csv_path, c.line, c.n, ncol);
        const char *id = c.field[0], *sset = c.field[c_subset];
        char *end;
        errno = 0;
        long tid = strtol(id, &end, 10);
        if (!*id || *end || errno || tid < 0 || tid > 999999)
            cli_die(CLI_EXIT_DATA, "%s:%ld: track_id should be an integer in [0, 999999], got '%.40s'",
                    csv_path, c.line, id);
        int rank = subset_rank(sset);
        if (rank < 0)
            cli_die(CLI_EXIT_DATA, "%s:%ld: (set, subset) should be small, medium or large, got '%.40s'",
                    csv_path, c.line, sset);
        if (rank > want)
            continue;
        char tid6[16], rel[32], where[64];
        snprintf(tid6, sizeof tid6, "%06ld", tid);
        int bad = 0;
        for (size_t k = 0; k < sizeof fma_broken / sizeof *fma_broken; k++)
            bad |= !strcmp(tid6, fma_broken[k]);
        if (bad) {
            cli_warn("track %s: a known FMA file without audio, left out", tid6);
            broken++;
            continue;
        }
        const char *split = c.field[c_split], *genre = c.field[c_genre];
        if (strcmp(split, "training") && strcmp(split, "validation") && strcmp(split, "test"))
            cli_die(CLI_EXIT_DATA, "%s:%ld: (set, split) should be training, validation or test, got '%.40s'",
                    csv_path, c.line, split);
        if (!*genre) {
            no_genre++;
            cli_info("track %s: no genre_top, left out", tid6);
            continue;
        }
        snprintf(rel, sizeof rel, "%.3s/%s.mp3", tid6, tid6);
        snprintf(where, sizeof where, "%s:%ld", csv_path, c.line);
        char *path = audio_path(rel);
        char tidstr[16];
        snprintf(tidstr, sizeof tidstr, "%ld", tid);
        const char *cols[2] = {split, genre};
        kept += emit(path, tidstr, cols, 2, where);
        free(path);
    }
    if (no_genre)
        cli_warn("%ld track%s without genre_top left out", no_genre, no_genre == 1 ? "" : "s");
    report_missing();
    cli_info("%ld tracks of fma_%s written, %ld known broken left out", kept, subset, broken);
    for (int i = 0; i < ncol; i++) {
        free(top[i]);
        free(sub[i]);
    }
    free(top);
    free(sub);
    free(dflt);
    cmr_csv_free(&c);
    free(text);
    return 0;
}

/* ------------------------------------------------------------------ */
/* IRMAS                                                               */

struct irmas_file {
    char *name;  /* file name */
    char *group; /* the recording: name without "__N.wav" */
};

static int cmp_irmas(const void *a, const void *b)
{
    return strcmp(((const struct irmas_file *)a)->name, ((const struct irmas_file *)b)->name);
}

static int has_wav_ext(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && !strcasecmp(s + n - 4, ".wav");
}

static int run_irmas(const char *root, uint64_t seed, const int pct[3])
{
    DIR *d = opendir(root);
    if (!d)
        cli_die(CLI_EXIT_DATA, "%s: %s", root, strerror(errno));
    set_audio_root(root);
    char **classes = NULL;
    int n_classes = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", root, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            classes = xrealloc(classes, sizeof *classes * (size_t)(n_classes + 1));
            classes[n_classes++] = xstrdup(e->d_name);
        }
        free(p);
    }
    closedir(d);
    if (n_classes == 0)
        cli_die(CLI_EXIT_DATA, "%s: no class folders (expected IRMAS-TrainingData/<class>/*.wav)", root);
    qsort(classes, (size_t)n_classes, sizeof *classes, cmp_str);

    struct cmr_rng base;
    cmr_rng_seed(&base, seed);
    puts("path\ttrack\tsplit\tlabel");
    long counts[3] = {0};
    for (int k = 0; k < n_classes; k++) {
        char *dir = xasprintf("%s/%s", root, classes[k]);
        DIR *cd = opendir(dir);
        if (!cd)
            cli_die(CLI_EXIT_DATA, "%s: %s", dir, strerror(errno));
        struct irmas_file *files = NULL;
        int n = 0;
        while ((e = readdir(cd))) {
            if (e->d_name[0] == '.' || !has_wav_ext(e->d_name))
                continue;
            files = xrealloc(files, sizeof *files * (size_t)(n + 1));
            files[n].name = xstrdup(e->d_name);
            files[n].group = xstrdup(e->d_name);
            /* "[cel][cla]0001__2.wav" -> "[cel][cla]0001"; otherwise the stem */
            char *g = files[n].group, *us = strstr(g, "__");
            char *last = NULL;
            while (us) {
                last = us;
                us = strstr(us + 2, "__");
            }
            if (last)
                *last = 0;
            else
                g[strlen(g) - 4] = 0;
            n++;
        }
        closedir(cd);
        if (n == 0) {
            cli_warn("%s: no .wav files, class '%s' left out", dir, classes[k]);
            free(dir);
            continue;
        }
        qsort(files, (size_t)n, sizeof *files, cmp_irmas);
        /* distinct groups in name order */
        char **groups = xmalloc(sizeof *groups * (size_t)n);
        int ng = 0;
        for (int i = 0; i < n; i++) {
            int seen = 0;
            for (int j = ng - 1; j >= 0 && !seen; j--)
                seen = !strcmp(groups[j], files[i].group);
            if (!seen)
                groups[ng++] = files[i].group;
        }
        qsort(groups, (size_t)ng, sizeof *groups, cmp_str);
        /* shuffle the groups with the class's own generator, then cut */
        struct cmr_rng r;
        cmr_rng_split(&base, (uint64_t)k, &r);
        for (int i = ng - 1; i > 0; i--) {
            int j = (int)cmr_rng_below(&r, (uint64_t)i + 1);
            char *t = groups[i];
            groups[i] = groups[j];
            groups[j] = t;
        }
        int n_train = (int)((long)ng * pct[0] / 100), n_val = (int)((long)ng * pct[1] / 100);
        if (ng >= 3) { /* every split gets at least one recording when it can */
            if (pct[1] > 0 && n_val == 0)
                n_val = 1;
            if (pct[2] > 0 && ng - n_train - n_val == 0)
                n_train--;
            if (n_train < 1)
                n_train = 1;
        }
        for (int i = 0; i < n; i++) {
            int pos = 0;
            while (strcmp(groups[pos], files[i].group))
                pos++;
            int s = pos < n_train ? 0 : pos < n_train + n_val ? 1 : 2;
            static const char *const names[3] = {"training", "validation", "test"};
            char *rel = xasprintf("%s/%s", classes[k], files[i].name);
            char *path = audio_path(rel);
            char *track = xstrdup(rel);
            track[strlen(track) - 4] = 0;
            const char *cols[2] = {names[s], classes[k]};
            counts[s] += emit(path, track, cols, 2, dir);
            free(rel);
            free(path);
            free(track);
        }
        for (int i = 0; i < n; i++) {
            free(files[i].name);
            free(files[i].group);
        }
        free(files);
        free(groups);
        free(dir);
    }
    report_missing();
    cli_info("%d classes; %ld training, %ld validation, %ld test clips", n_classes, counts[0], counts[1],
             counts[2]);
    for (int k = 0; k < n_classes; k++)
        free(classes[k]);
    free(classes);
    return 0;
}

/* ------------------------------------------------------------------ */
/* JSON: lib/util/json.c; an error ends the program                      */

static void json_ok(struct cmr_json *j, int rc)
{
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(j->err, rc));
}

static noreturn void json_fail(struct cmr_json *j, const char *what)
{
    int rc = cmr_json_fail(j, what);
    cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(j->err, rc));
}

/* ------------------------------------------------------------------ */
/* AOTM-2011                                                           */

/* a two-column TSV without header: id<TAB>path; '#' lines and blank lines skipped */
static void read_id_paths(const char *path, struct map *m)
{
    FILE *f = fopen(path, "r");
    if (!f)
        cli_die(CLI_EXIT_DATA, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t'))
            cli_die(CLI_EXIT_DATA, "%s:%ld: expected two tab-separated fields: id, path", path, lineno);
        *tab = 0;
        if (map_put(m, line, tab + 1))
            cli_die(CLI_EXIT_DATA, "%s:%ld: id '%.40s' listed twice", path, lineno, line);
    }
    if (ferror(f))
        cli_die(CLI_EXIT_DATA, "%s: read error", path);
    free(line);
    fclose(f);
}

struct membership {
    char *track;
    char *playlist;
};

static int cmp_membership(const void *a, const void *b)
{
    const struct membership *x = a, *y = b;
    int c = strcmp(x->track, y->track);
    return c ? c : strcmp(x->playlist, y->playlist);
}

static int run_aotm(const char *json_path, const char *map_path, const char *audio, long min_tracks)
{
    struct map paths = {0};
    read_id_paths(map_path, &paths);
    if (!audio) {
        char *dir = xstrdup(map_path), *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            strcpy(dir, ".");
        set_audio_root(dir);
        free(dir);
    } else {
        set_audio_root(audio);
    }
    /* a track's audio is checked once */
    struct map ok_audio = {0};

    size_t len;
    char *text = read_file(json_path, &len);
    struct cmr_error jerr = {0};
    struct cmr_json j;
    cmr_json_init(&j, text, len, json_path, CMR_JSON_AT_LINE, 0, &jerr);
    char *key = NULL, *val = NULL;
    struct membership *mem = NULL;
    size_t n_mem = 0, cap_mem = 0;
    long n_pl = 0, kept_pl = 0, no_audio = 0;
    char **cur = NULL;
    size_t n_cur = 0, cap_cur = 0;
    int more_pl, more, more_l, more_t;

    json_ok(&j, cmr_json_begin(&j, '[', &more_pl));
    while (more_pl) {
        /* one playlist object */
        char mix[64] = "";
        n_cur = 0;
        int have_lists = 0;
        json_ok(&j, cmr_json_begin(&j, '{', &more));
        while (more) {
            free(key);
            json_ok(&j, cmr_json_string(&j, &key, NULL));
            json_ok(&j, cmr_json_expect(&j, ':'));
            if (!strcmp(key, "mix_id")) {
                free(val);
                if (cmr_json_peek(&j) == '"')
                    json_ok(&j, cmr_json_string(&j, &val, NULL));
                else
                    json_ok(&j, cmr_json_number_text(&j, &val));
                snprintf(mix, sizeof mix, "%s", val);
            } else if (!strcmp(key, "filtered_lists")) {
                have_lists = 1;
                json_ok(&j, cmr_json_begin(&j, '[', &more_l));
                while (more_l) {
                    json_ok(&j, cmr_json_begin(&j, '[', &more_t));
                    while (more_t) {
                        char *t;
                        json_ok(&j, cmr_json_string(&j, &t, NULL));
                        if (n_cur == cap_cur) {
                            cap_cur = cap_cur ? 2 * cap_cur : 64;
                            cur = xrealloc(cur, sizeof *cur * cap_cur);
                        }
                        cur[n_cur++] = t;
                        json_ok(&j, cmr_json_next(&j, ']', &more_t));
                    }
                    json_ok(&j, cmr_json_next(&j, ']', &more_l));
                }
            } else {
                json_ok(&j, cmr_json_skip(&j));
            }
            json_ok(&j, cmr_json_next(&j, '}', &more));
        }
        n_pl++;
        if (!mix[0] || !have_lists)
            json_fail(&j, "a playlist without mix_id or filtered_lists");
        /* the playlist's distinct tracks with audio */
        char *pl = xasprintf("aotm:%s", mix);
        check_field("playlist id", pl, json_path);
        if (strchr(pl, ','))
            cli_die(CLI_EXIT_DATA, "%s: playlist id '%s' holds a comma", json_path, pl);
        size_t n_ok = 0;
        for (size_t i = 0; i < n_cur; i++) {
            int dup = 0;
            for (size_t k = 0; k < n_ok && !dup; k++)
                dup = !strcmp(cur[k], cur[i]);
            const char *rel = map_get(&paths, cur[i]);
            if (dup || !rel) {
                no_audio += !dup;
                free(cur[i]);
                continue;
            }
            if (g_check) {
                const char *st = map_get(&ok_audio, cur[i]);
                if (!st) {
                    char *path = audio_path(rel);
                    int okf = access(path, R_OK) == 0;
                    if (!okf) {
                        g_missing++;
                        cli_info("track %s: %s: %s, left out", cur[i], path, strerror(errno));
                    }
                    map_put(&ok_audio, cur[i], okf ? "1" : "0");
                    st = okf ? "1" : "0";
                    free(path);
                }
                if (st[0] == '0') {
                    free(cur[i]);
                    continue;
                }
            }
            cur[n_ok++] = cur[i];
        }
        if ((long)n_ok >= min_tracks) {
            kept_pl++;
            for (size_t i = 0; i < n_ok; i++) {
                if (n_mem == cap_mem) {
                    cap_mem = cap_mem ? 2 * cap_mem : 1024;
                    mem = xrealloc(mem, sizeof *mem * cap_mem);
                }
                mem[n_mem].track = cur[i];
                mem[n_mem].playlist = xstrdup(pl);
                n_mem++;
            }
        } else {
            for (size_t i = 0; i < n_ok; i++)
                free(cur[i]);
        }
        free(pl);
        json_ok(&j, cmr_json_next(&j, ']', &more_pl));
    }
    (void)cmr_json_peek(&j);
    if (j.i != j.n)
        json_fail(&j, "text after the top-level array");

    /* one line per track, tracks in id order, playlists in id order */
    qsort(mem, n_mem, sizeof *mem, cmp_membership);
    puts("path\ttrack\tplaylists");
    long n_tracks = 0;
    struct buf pls = {0};
    for (size_t i = 0; i < n_mem;) {
        size_t k = i;
        pls.n = 0;
        for (; k < n_mem && !strcmp(mem[k].track, mem[i].track); k++) {
            if (k > i && !strcmp(mem[k].playlist, mem[k - 1].playlist))
                continue;
            if (pls.n)
                buf_put(&pls, ',');
            for (const char *q = mem[k].playlist; *q; q++)
                buf_put(&pls, *q);
        }
        char *path = audio_path(map_get(&paths, mem[i].track));
        const char *cols[1] = {pls.p};
        int save = g_check;
        g_check = 0; /* checked above */
        n_tracks += emit(path, mem[i].track, cols, 1, json_path);
        g_check = save;
        free(path);
        i = k;
    }
    report_missing();
    if (no_audio)
        cli_info("%ld playlist entries have no id in %s", no_audio, map_path);
    cli_info("%ld of %ld playlists kept (>= %ld tracks with audio), %ld tracks", kept_pl, n_pl, min_tracks,
             n_tracks);
    if (kept_pl == 0)
        cli_warn("no playlist has %ld tracks with audio", min_tracks);
    for (size_t i = 0; i < n_mem; i++) {
        free(mem[i].track);
        free(mem[i].playlist);
    }
    free(mem);
    free(cur);
    free(pls.p);
    free(key);
    free(val);
    free(text);
    map_free(&paths);
    map_free(&ok_audio);
    return 0;
}

/* ------------------------------------------------------------------ */
/* MSD tagging split (musicnn's index layout)                          */

/* output_labels_NAME.txt: "# comment" lines, then NAME = ['a','b',...] (or one name a line) */
static char **read_label_names(const char *path, int *n_out)
{
    size_t len;
    char *text = read_file(path, &len);
    char **names = NULL;
    int n = 0;
    char *lb = NULL;
    /* the first '[' outside a comment line */
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (line[0] != '#' && (lb = strchr(line, '[')) && (!nl || lb < nl))
            break;
        lb = NULL;
        line = nl ? nl + 1 : NULL;
    }
    if (lb) {
        char *p = lb + 1;
        for (;;) {
            while (*p && (isspace((unsigned char)*p) || *p == ','))
                p++;
            if (*p == ']')
                break;
            if (*p != '\'' && *p != '"')
                cli_die(CLI_EXIT_DATA, "%s: expected a quoted tag name in the list", path);
            char q = *p++;
            char *end = strchr(p, q);
            if (!end)
                cli_die(CLI_EXIT_DATA, "%s: unterminated tag name", path);
            *end = 0;
            names = xrealloc(names, sizeof *names * (size_t)(n + 1));
            names[n++] = xstrdup(p);
            p = end + 1;
        }
    } else {
        /* one tag name a line */
        for (char *save = NULL, *t = strtok_r(text, "\r\n", &save); t; t = strtok_r(NULL, "\r\n", &save)) {
            if (t[0] == '#' || !t[0])
                continue;
            names = xrealloc(names, sizeof *names * (size_t)(n + 1));
            names[n++] = xstrdup(t);
        }
    }
    free(text);
    if (n == 0)
        cli_die(CLI_EXIT_DATA, "%s: no tag names", path);
    for (int i = 0; i < n; i++)
        if (strchr(names[i], ',') || !names[i][0])
            cli_die(CLI_EXIT_DATA, "%s: tag name '%s' is empty or holds a comma", path, names[i]);
    *n_out = n;
    return names;
}

static void run_msd_split(const char *gt_path, const char *split, const struct map *index, char **tags,
                          int n_tags, long *count, long *no_index)
{
    FILE *f = fopen(gt_path, "r");
    if (!f)
        cli_die(CLI_EXIT_DATA, "%s: %s", gt_path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    struct buf tl = {0};
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0)
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || tab == line)
            cli_die(CLI_EXIT_DATA, "%s:%ld: expected id<TAB>[0, 1, ...]", gt_path, lineno);
        *tab = 0;
        char *p = strchr(tab + 1, '[');
        if (!p)
            cli_die(CLI_EXIT_DATA, "%s:%ld: expected a bracketed list of %d values", gt_path, lineno, n_tags);
        p++;
        tl.n = 0;
        buf_put(&tl, 0);
        tl.n = 0;
        int k = 0;
        for (;;) {
            while (*p == ' ' || *p == ',')
                p++;
            if (*p == ']')
                break;
            char *end;
            double v = strtod(p, &end);
            if (end == p || k >= n_tags || (v != 0 && v != 1))
                cli_die(CLI_EXIT_DATA, "%s:%ld: expected %d values of 0 or 1", gt_path, lineno, n_tags);
            if (v == 1) {
                if (tl.n)
                    buf_put(&tl, ',');
                for (const char *q = tags[k]; *q; q++)
                    buf_put(&tl, *q);
            }
            k++;
            p = end;
        }
        if (k != n_tags)
            cli_die(CLI_EXIT_DATA, "%s:%ld: %d values, the tag list has %d", gt_path, lineno, k, n_tags);
        const char *rel = map_get(index, line);
        if (!rel) {
            (*no_index)++;
            cli_info("%s:%ld: id %s is not in the index, left out", gt_path, lineno, line);
            continue;
        }
        char *path = audio_path(rel), where[4200];
        snprintf(where, sizeof where, "%s:%ld", gt_path, lineno);
        const char *cols[2] = {split, tl.p};
        *count += emit(path, line, cols, 2, where);
        free(path);
    }
    if (ferror(f))
        cli_die(CLI_EXIT_DATA, "%s: read error", gt_path);
    free(tl.p);
    free(line);
    fclose(f);
}

static int run_msd(const char *dir, const char *audio, const char *name)
{
    char *index_path = xasprintf("%s/index_%s.tsv", dir, name);
    char *labels_path = xasprintf("%s/output_labels_%s.txt", dir, name);
    struct map index = {0};
    read_id_paths(index_path, &index);
    int n_tags;
    char **tags = read_label_names(labels_path, &n_tags);
    set_audio_root(audio ? audio : dir);
    puts("path\ttrack\tsplit\ttags");
    static const char *const files[3] = {"train", "val", "test"};
    static const char *const splits[3] = {"training", "validation", "test"};
    long counts[3] = {0}, no_index = 0;
    for (int s = 0; s < 3; s++) {
        char *gt = xasprintf("%s/%s_gt_%s.tsv", dir, files[s], name);
        run_msd_split(gt, splits[s], &index, tags, n_tags, &counts[s], &no_index);
        free(gt);
    }
    if (no_index)
        cli_warn("%ld track%s of the splits not in %s, left out", no_index, no_index == 1 ? "" : "s",
                 index_path);
    report_missing();
    cli_info("%d tags; %ld training, %ld validation, %ld test tracks", n_tags, counts[0], counts[1], counts[2]);
    for (int i = 0; i < n_tags; i++)
        free(tags[i]);
    free(tags);
    map_free(&index);
    free(index_path);
    free(labels_path);
    return 0;
}

/* ------------------------------------------------------------------ */
/* MagnaTagATune annotations_final.csv                                 */

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

static int run_mtat(const char *csv_path, const char *audio, long top)
{
    size_t len;
    char *text = read_file(csv_path, &len);
    struct cmr_csv c;
    cmr_csv_init(&c, text, len, '\t', csv_path);
    if (!csv_next(&c))
        cli_die(CLI_EXIT_DATA, "%s: empty file", csv_path);
    int ncol = c.n;
    if (ncol < 3 || strcmp(c.field[0], "clip_id") || strcmp(c.field[ncol - 1], "mp3_path"))
        cli_die(CLI_EXIT_DATA, "%s:1: expected a tab-separated header clip_id, tags..., mp3_path "
                "(is this annotations_final.csv?)", csv_path);
    int n_tags = ncol - 2;
    if (top > n_tags)
        top = n_tags;
    char **names = xmalloc(sizeof *names * (size_t)n_tags);
    for (int t = 0; t < n_tags; t++) {
        names[t] = xstrdup(c.field[t + 1]);
        if (strchr(names[t], ','))
            cli_die(CLI_EXIT_DATA, "%s:1: tag '%s' holds a comma", csv_path, names[t]);
    }
    /* pass 1: rows and tag counts */
    struct row {
        char *id, *mp3;
        uint8_t *tags;
        long line;
    } *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    struct tagcount *cnt = xmalloc(sizeof *cnt * (size_t)n_tags);
    for (int t = 0; t < n_tags; t++) {
        cnt[t].col = t;
        cnt[t].count = 0;
    }
    while (csv_next(&c)) {
        if (c.n == 1 && !c.field[0][0])
            continue;
        if (c.n != ncol)
            cli_die(CLI_EXIT_DATA, "%s:%ld: %d fields, the header has %d", csv_path, c.line, c.n, ncol);
        if (n_rows == cap_rows) {
            cap_rows = cap_rows ? 2 * cap_rows : 1024;
            rows = xrealloc(rows, sizeof *rows * cap_rows);
        }
        struct row *r = &rows[n_rows++];
        r->id = xstrdup(c.field[0]);
        r->mp3 = xstrdup(c.field[ncol - 1]);
        r->line = c.line;
        r->tags = xmalloc((size_t)n_tags);
        for (int t = 0; t < n_tags; t++) {
            const char *v = c.field[t + 1];
            if (strcmp(v, "0") && strcmp(v, "1"))
                cli_die(CLI_EXIT_DATA, "%s:%ld: tag '%s' should be 0 or 1, got '%.20s'", csv_path, c.line,
                        names[t], v);
            r->tags[t] = v[0] == '1';
            cnt[t].count += r->tags[t];
        }
        if (!r->mp3[0])
            cli_die(CLI_EXIT_DATA, "%s:%ld: empty mp3_path", csv_path, c.line);
    }
    qsort(cnt, (size_t)n_tags, sizeof *cnt, cmp_tagcount);
    uint8_t *use = calloc((size_t)n_tags, 1);
    if (!use)
        cli_die(CLI_EXIT_DATA, "out of memory");
    for (long t = 0; t < top; t++)
        use[cnt[t].col] = 1;

    if (!audio) {
        char *dir = xstrdup(csv_path), *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            strcpy(dir, ".");
        set_audio_root(dir);
        free(dir);
    } else {
        set_audio_root(audio);
    }
    puts("path\ttrack\tsplit\ttags");
    long counts[3] = {0};
    struct buf tl = {0};
    for (size_t i = 0; i < n_rows; i++) {
        struct row *r = &rows[i];
        /* the folder: the path's first character, 0-9a-f */
        int ch = tolower((unsigned char)r->mp3[0]), s;
        if (r->mp3[1] != '/' || !isxdigit(ch))
            cli_die(CLI_EXIT_DATA, "%s:%ld: mp3_path should start with a folder 0-9 or a-f, got '%.60s'",
                    csv_path, r->line, r->mp3);
        s = ch <= 'b' ? 0 : ch == 'c' ? 1 : 2; /* '0'-'9' sort before 'a' */
        static const char *const splits[3] = {"training", "validation", "test"};
        tl.n = 0;
        buf_put(&tl, 0);
        tl.n = 0;
        /* tags in the order of the header */
        for (int t = 0; t < n_tags; t++) {
            if (!use[t] || !r->tags[t])
                continue;
            if (tl.n)
                buf_put(&tl, ',');
            for (const char *q = names[t]; *q; q++)
                buf_put(&tl, *q);
        }
        char *path = audio_path(r->mp3), where[4200];
        snprintf(where, sizeof where, "%s:%ld", csv_path, r->line);
        const char *cols[2] = {splits[s], tl.p};
        counts[s] += emit(path, r->id, cols, 2, where);
        free(path);
    }
    report_missing();
    cli_info("top %ld tags; %ld training, %ld validation, %ld test clips", top, counts[0], counts[1],
             counts[2]);
    for (size_t i = 0; i < n_rows; i++) {
        free(rows[i].id);
        free(rows[i].mp3);
        free(rows[i].tags);
    }
    free(rows);
    for (int t = 0; t < n_tags; t++)
        free(names[t]);
    free(names);
    free(cnt);
    free(use);
    free(tl.p);
    cmr_csv_free(&c);
    free(text);
    return 0;
}

/* ------------------------------------------------------------------ */

static void parse_split(const char *arg, int pct[3])
{
    char extra;
    if (sscanf(arg, "%d/%d/%d%c", &pct[0], &pct[1], &pct[2], &extra) != 3 || pct[0] < 1 || pct[1] < 0 ||
        pct[2] < 0 || pct[0] + pct[1] + pct[2] != 100)
        cli_usage_error("--split takes three integer percentages A/B/C with A >= 1 and A+B+C = 100, got '%s'",
                        arg);
}

int main(int argc, char **argv)
{
    enum { O_SUBSET = 256, O_SPLIT, O_MIN, O_NAME, O_TOP, O_NOCHECK };
    static const struct option opts[] = {
        {"audio", required_argument, NULL, 'a'},
        {"subset", required_argument, NULL, O_SUBSET},
        {"seed", required_argument, NULL, 's'},
        {"split", required_argument, NULL, O_SPLIT},
        {"min-tracks", required_argument, NULL, O_MIN},
        {"name", required_argument, NULL, O_NAME},
        {"top", required_argument, NULL, O_TOP},
        {"no-check", no_argument, NULL, O_NOCHECK},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *audio = NULL, *subset = "small", *name = "msd";
    uint64_t seed = 0;
    int pct[3] = {70, 15, 15}, c;
    long min_tracks = 4, top = 50;

    cli_init("cmr-manifest");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":a:s:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            audio = cli_nonempty("--audio", "a directory", optarg);
            break;
        case O_SUBSET:
            if (subset_rank(optarg) < 0)
                cli_usage_error("--subset takes small, medium or large, got '%s'", optarg);
            subset = optarg;
            break;
        case 's': seed = cli_seed("--seed", optarg); break;
        case O_SPLIT: parse_split(optarg, pct); break;
        case O_MIN: min_tracks = cli_long("--min-tracks", optarg, 1, 100000); break;
        case O_NAME:
            if (!*optarg || strchr(optarg, '/'))
                cli_usage_error("--name takes a file-name suffix such as msd or mtt, got '%s'", optarg);
            name = optarg;
            break;
        case O_TOP: top = cli_long("--top", optarg, 1, 188); break;
        case O_NOCHECK: g_check = 0; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    if (optind >= argc)
        cli_usage_error("no data set given: fma, irmas, aotm, msd or mtat");
    const char *set = argv[optind++];
    int nargs = argc - optind;
    int want = !strcmp(set, "aotm") ? 2 : 1;
    if (strcmp(set, "fma") && strcmp(set, "irmas") && strcmp(set, "aotm") && strcmp(set, "msd") &&
        strcmp(set, "mtat"))
        cli_usage_error("unknown data set '%s': fma, irmas, aotm, msd or mtat", set);
    if (nargs != want)
        cli_usage_error("%s takes %d input%s, got %d", set, want, want == 1 ? "" : "s", nargs);

    if (!strcmp(set, "fma"))
        run_fma(argv[optind], audio, subset);
    else if (!strcmp(set, "irmas"))
        run_irmas(audio ? audio : argv[optind], seed, pct);
    else if (!strcmp(set, "aotm"))
        run_aotm(argv[optind], argv[optind + 1], audio, min_tracks);
    else if (!strcmp(set, "msd"))
        run_msd(argv[optind], audio, name);
    else
        run_mtat(argv[optind], audio, top);
    free(g_audio_root);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
