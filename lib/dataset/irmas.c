/* IRMAS training data (Bosch et al. 2012): ROOT/<class>/NAME.wav, label = the
 * folder. IRMAS has no validation or test split of its training data: each
 * class is split by the cfg.split percentages, seeded, keeping the excerpts
 * of one recording ("..__1.wav", "..__2.wav") together. See dataset.h. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dataset/common.h"
#include "util/alloc.h"
#include "util/rng.h"

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

/* the class folders of root, sorted */
static int list_classes(struct cmr_ds *d, const char *root, char ***out, int *n_out)
{
    DIR *dir = opendir(root);
    if (!dir)
        return cmr_ds_fail_io(d, root);
    char **classes = NULL;
    size_t n = 0, cap = 0;
    int rc = CMR_OK;
    struct dirent *e;
    while (!rc && (e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = cmr_asprintf(d->err, "%s/%s", root, e->d_name);
        struct stat st;
        if (!p)
            rc = CMR_ENOMEM;
        else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
                 (cmr_grow(&classes, &cap, n + 1, sizeof *classes, d->err) ||
                  !(classes[n++] = cmr_strdup(e->d_name, d->err))))
            rc = CMR_ENOMEM;
        free(p);
    }
    closedir(dir);
    if (!rc && n == 0)
        rc = cmr_ds_fail(d, "%s: no class folders (expected IRMAS-TrainingData/<class>/*.wav)", root);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(classes[i]);
        free(classes);
        return rc;
    }
    qsort(classes, n, sizeof *classes, cmr_ds_cmp_str);
    *out = classes;
    *n_out = (int)n;
    return CMR_OK;
}

static void free_files(struct irmas_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].group);
    }
    free(files);
}

/* the .wav files of a class folder with their recordings, in name order */
static int list_files(struct cmr_ds *d, const char *dir, struct irmas_file **out, int *n_out)
{
    DIR *cd = opendir(dir);
    if (!cd)
        return cmr_ds_fail_io(d, dir);
    struct irmas_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(cd))) {
        if (e->d_name[0] == '.' || !has_wav_ext(e->d_name))
            continue;
        if (cmr_grow(&files, &cap, n + 1, sizeof *files, d->err) ||
            !(files[n].name = cmr_strdup(e->d_name, d->err)) ||
            !(files[n].group = cmr_strdup(e->d_name, d->err))) {
            if (n < cap && files[n].name)
                n++;
            closedir(cd);
            free_files(files, n);
            return CMR_ENOMEM;
        }
        /* "[cel][cla]0001__2.wav" -> "[cel][cla]0001"; otherwise the stem */
        char *g = files[n].group, *us = strstr(g, "__"), *last = NULL;
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
    qsort(files, n, sizeof *files, cmp_irmas);
    *out = files;
    *n_out = (int)n;
    return CMR_OK;
}

/* the split of each distinct recording: the recordings in name order,
 * shuffled with the class's own generator, then cut by pct */
static int split_groups(struct cmr_ds *d, const struct irmas_file *files, int n, const struct cmr_rng *base,
                        int k, char ***out, int *ng_out, int cut[2])
{
    char **groups = cmr_mallocn((size_t)n, sizeof *groups, d->err);
    if (!groups)
        return CMR_ENOMEM;
    int ng = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = ng - 1; j >= 0 && !seen; j--)
            seen = !strcmp(groups[j], files[i].group);
        if (!seen)
            groups[ng++] = files[i].group;
    }
    qsort(groups, (size_t)ng, sizeof *groups, cmr_ds_cmp_str);
    struct cmr_rng r;
    cmr_rng_split(base, (uint64_t)k, &r);
    for (int i = ng - 1; i > 0; i--) {
        int j = (int)cmr_rng_below(&r, (uint64_t)i + 1);
        char *t = groups[i];
        groups[i] = groups[j];
        groups[j] = t;
    }
    const int *pct = d->cfg->split;
    int n_train = (int)((long)ng * pct[0] / 100), n_val = (int)((long)ng * pct[1] / 100);
    if (ng >= 3) { /* every split gets at least one recording when it can */
        if (pct[1] > 0 && n_val == 0)
            n_val = 1;
        if (pct[2] > 0 && ng - n_train - n_val == 0)
            n_train--;
        if (n_train < 1)
            n_train = 1;
    }
    *out = groups;
    *ng_out = ng;
    cut[0] = n_train;
    cut[1] = n_train + n_val;
    return CMR_OK;
}

/* the rows of class k */
static int run_class(struct cmr_ds *d, const char *root, const char *cls, int k, const struct cmr_rng *base,
                     long counts[3])
{
    static const char *const names[3] = {"training", "validation", "test"};
    struct irmas_file *files = NULL;
    char **groups = NULL;
    int n = 0, ng, cut[2], rc;
    char *dir = cmr_asprintf(d->err, "%s/%s", root, cls);
    if (!dir)
        return CMR_ENOMEM;
    if ((rc = list_files(d, dir, &files, &n)))
        goto out;
    if (n == 0) {
        cmr_ds_warn(d, "%s: no .wav files, class '%s' left out", dir, cls);
        goto out;
    }
    if ((rc = split_groups(d, files, n, base, k, &groups, &ng, cut)))
        goto out;
    for (int i = 0; i < n; i++) {
        int pos = 0;
        while (strcmp(groups[pos], files[i].group))
            pos++;
        int s = pos < cut[0] ? 0 : pos < cut[1] ? 1 : 2;
        char *rel = cmr_asprintf(d->err, "%s/%s", cls, files[i].name);
        char *path = rel ? cmr_ds_path(d, rel) : NULL, *track = rel ? cmr_strdup(rel, d->err) : NULL;
        if (path && track) {
            track[strlen(track) - 4] = 0;
            const char *cols[2] = {names[s], cls};
            rc = cmr_ds_emit(d, path, track, cols, 2, dir, d->cfg->check);
        } else {
            rc = CMR_ENOMEM;
        }
        free(rel);
        free(path);
        free(track);
        if (rc < 0)
            goto out;
        counts[s] += rc;
        rc = CMR_OK;
    }
out:
    free_files(files, (size_t)n);
    free(groups);
    free(dir);
    return rc;
}

int cmr_dataset_irmas(const char *root, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                      struct cmr_error *err)
{
    struct cmr_ds d;
    cmr_ds_init(&d, cfg, out, err);
    if (cfg->audio)
        root = cfg->audio;
    char **classes = NULL;
    int n_classes = 0, rc;
    if ((rc = list_classes(&d, root, &classes, &n_classes)) || (rc = cmr_ds_set_root(&d, root)) ||
        (rc = cmr_ds_header(&d, "path\ttrack\tsplit\tlabel")))
        goto out;
    struct cmr_rng base;
    cmr_rng_seed(&base, cfg->seed);
    long counts[3] = {0};
    for (int k = 0; k < n_classes; k++)
        if ((rc = run_class(&d, root, classes[k], k, &base, counts)))
            goto out;
    cmr_ds_report_missing(&d);
    cmr_ds_info(&d, "%d classes; %ld training, %ld validation, %ld test clips", n_classes, counts[0], counts[1],
                counts[2]);
out:
    for (int k = 0; k < n_classes; k++)
        free(classes[k]);
    free(classes);
    cmr_ds_free(&d);
    return rc;
}
