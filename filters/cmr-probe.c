/* cmr-probe: linear probes on one vector per track (see docs/evaluation.md)
 *
 *   cmr-probe [OPTION]... [FILE|-]
 *
 * Reads "summary" frames (any 1-D vector per track) with metadata `split`
 * and `label` (or `tags`), standardises the features on the training rows,
 * chooses C on the validation rows, and reports test metrics. Output is a
 * text report (or JSON lines), not frames. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/probe.h"
#include "eval/vectors.h"
#include "frame.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-probe [OPTION]... [FILE|-]\n"
        "Linear probes on one vector per track (cmr-summarize's \"summary\" frames,\n"
        "or any 1-D frame per track). The split comes from the metadata `split`\n"
        "(training/validation/test, also train/valid), the class from `label`.\n"
        "Features are standardised with the training rows' mean and std; for each\n"
        "C of the grid a classifier is fitted on the training rows (liblinear) and\n"
        "scored on the validation rows; the best C (ties: the smallest) is scored on\n"
        "the test rows: accuracy, macro-F1 and the confusion matrix.\n"
        "\n"
        "  -c, --classifier WHICH  svm, logreg or both [both]\n"
        "                          svm: L2-regularised L2-loss linear SVM (dual)\n"
        "                          logreg: L2-regularised logistic regression\n"
        "  -C, --C LIST            comma-separated C grid [1e-4,1e-3,...,1e4]\n"
        "      --tol X             liblinear stopping tolerance [1e-4] (1e-8..1)\n"
        "  -T, --tags              multi-label: the metadata `tags` (comma-separated)\n"
        "                          gives each track's tags; one logistic regression\n"
        "                          per tag, one C for all tags chosen on the mean\n"
        "                          validation ROC-AUC; reports macro ROC-AUC and\n"
        "                          PR-AUC (average precision) over the tags that have\n"
        "                          positive and negative rows in training and test\n"
        "      --label-key KEY     metadata key of the class [label] (or tags [tags])\n"
        "      --split-key KEY     metadata key of the split [split]\n"
        "  -j, --json              one JSON object per classifier per line\n"
        "  -q, --quiet             no warnings\n"
        "  -v, --verbose           the validation score of every C on stderr\n"
        "  -h, --help              this help\n"
        "\n"
        "Tracks whose split is another value (e.g. empty) are left out, with a\n"
        "warning. Results are deterministic.\n"
        "\n"
        "Exit status: 0 ok; 1 bad input (not one vector per track, vectors of\n"
        "different lengths, a missing label or split, NaN features, no training,\n"
        "validation or test rows, fewer than two classes, a class without training\n"
        "rows) or a write error; 2 usage.\n");
    exit(code);
}

static void parse_grid(const char *arg, struct cmr_probe_cfg *cfg)
{
    char *copy = strdup(arg), *save = NULL;
    if (!copy)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cfg->n_C = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        errno = 0;
        double v = strtod(t, &end);
        if (end == t || *end || errno || !isfinite(v) || v <= 0 || v > 1e12)
            cli_usage_error("--C takes a comma-separated list of numbers in (0, 1e12], got '%s'", arg);
        if (cfg->n_C == CMR_PROBE_MAX_C)
            cli_usage_error("--C takes at most %d values", CMR_PROBE_MAX_C);
        if (cfg->n_C && v <= cfg->C[cfg->n_C - 1])
            cli_usage_error("--C takes increasing values, got '%s'", arg);
        cfg->C[cfg->n_C++] = v;
    }
    free(copy);
    if (cfg->n_C == 0)
        cli_usage_error("--C takes a comma-separated list of numbers in (0, 1e12], got '%s'", arg);
}

static int split_of(const char *s)
{
    if (!strcmp(s, "training") || !strcmp(s, "train"))
        return CMR_SPLIT_TRAIN;
    if (!strcmp(s, "validation") || !strcmp(s, "valid"))
        return CMR_SPLIT_VALID;
    if (!strcmp(s, "test"))
        return CMR_SPLIT_TEST;
    return CMR_SPLIT_NONE;
}

/* a sorted set of strings */
struct names {
    char **v;
    int n, cap;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_add(struct names *s, const char *x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        if (!(s->v = realloc(s->v, sizeof(char *) * (size_t)s->cap)))
            cli_die(CLI_EXIT_DATA, "out of memory");
    }
    if (!(s->v[s->n++] = strdup(x)))
        cli_die(CLI_EXIT_DATA, "out of memory");
}

/* sorts and removes duplicates */
static void names_finish(struct names *s)
{
    if (s->n == 0)
        return;
    qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_str);
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        if (k && !strcmp(s->v[k - 1], s->v[i]))
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
}

static int names_find(const struct names *s, const char *x)
{
    if (s->n == 0)
        return -1;
    char *const *p = bsearch(&x, s->v, (size_t)s->n, sizeof *s->v, cmp_str);
    return p ? (int)(p - s->v) : -1;
}

/* the report is built in memory and written only when every probe has run,
 * so that an error leaves nothing partial on stdout */
static FILE *report;
static void putc_report(int c) { putc(c, report); }

static void json_str(const char *s)
{
    putc_report('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(report, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(report, "\\u%04x", *p);
        else
            putc_report(*p);
    }
    putc_report('"');
}

static void json_num(double v)
{
    if (isfinite(v))
        fprintf(report, "%.10g", v);
    else
        fputs("null", report);
}

static const char *solver_name(int s) { return s == CMR_PROBE_SVM ? "svm" : "logreg"; }

static void report_single(const struct cmr_probe_result *r, const struct cmr_probe_cfg *cfg,
                          const struct names *classes, int d, int json)
{
    int k = classes->n;
    if (json) {
        fprintf(report, "{\"classifier\":\"%s\",\"C\":", solver_name(r->solver));
        json_num(r->C);
        fprintf(report, ",\"accuracy\":");
        json_num(r->accuracy);
        fprintf(report, ",\"macro_f1\":");
        json_num(r->macro_f1);
        double vbest = 0;
        for (int i = 0; i < cfg->n_C; i++)
            if (cfg->C[i] == r->C)
                vbest = r->val_score[i];
        fprintf(report, ",\"validation_accuracy\":");
        json_num(vbest);
        fprintf(report, ",\"train\":%d,\"validation\":%d,\"test\":%d,\"features\":%d,\"classes\":[", r->n_train,
               r->n_valid, r->n_test, d);
        for (int c = 0; c < k; c++) {
            if (c)
                putc_report(',');
            json_str(classes->v[c]);
        }
        fprintf(report, "],\"confusion\":[");
        for (int a = 0; a < k; a++) {
            fprintf(report, "%s[", a ? "," : "");
            for (int b = 0; b < k; b++)
                fprintf(report, "%s%lld", b ? "," : "", (long long)r->confusion[(size_t)a * k + b]);
            putc_report(']');
        }
        fprintf(report, "],\"grid\":[");
        for (int i = 0; i < cfg->n_C; i++) {
            fprintf(report, "%s{\"C\":", i ? "," : "");
            json_num(cfg->C[i]);
            fprintf(report, ",\"validation\":");
            json_num(r->val_score[i]);
            putc_report('}');
        }
        fprintf(report, "]}\n");
        return;
    }
    double best = 0;
    for (int i = 0; i < cfg->n_C; i++)
        if (cfg->C[i] == r->C)
            best = r->val_score[i];
    fprintf(report, "%-7s C %-8g validation accuracy %.4f   test accuracy %.4f   macro-F1 %.4f\n",
           solver_name(r->solver), r->C, best, r->accuracy, r->macro_f1);
    int w = 6;
    for (int c = 0; c < k; c++)
        if ((int)strlen(classes->v[c]) > w)
            w = (int)strlen(classes->v[c]);
    if (w > 16)
        w = 16;
    fprintf(report, "  confusion on test (rows: true class, columns: predicted)\n  %-*s", w, "");
    for (int c = 0; c < k; c++)
        fprintf(report, " %*.*s", w, w, classes->v[c]);
    putc_report('\n');
    for (int a = 0; a < k; a++) {
        fprintf(report, "  %-*.*s", w, w, classes->v[a]);
        for (int b = 0; b < k; b++)
            fprintf(report, " %*lld", w, (long long)r->confusion[(size_t)a * k + b]);
        putc_report('\n');
    }
}

static void report_tags(const struct cmr_probe_result *r, const struct cmr_probe_cfg *cfg,
                        const struct names *tags, int d, int json)
{
    double best = 0;
    for (int i = 0; i < cfg->n_C; i++)
        if (cfg->C[i] == r->C)
            best = r->val_score[i];
    if (json) {
        fprintf(report, "{\"classifier\":\"logreg\",\"task\":\"tags\",\"C\":");
        json_num(r->C);
        fprintf(report, ",\"roc_auc\":");
        json_num(r->roc_auc);
        fprintf(report, ",\"pr_auc\":");
        json_num(r->pr_auc);
        fprintf(report, ",\"validation_roc_auc\":");
        json_num(best);
        fprintf(report, ",\"tags_scored\":%d,\"train\":%d,\"validation\":%d,\"test\":%d,\"features\":%d,\"tags\":[",
               r->n_tags_scored, r->n_train, r->n_valid, r->n_test, d);
        for (int t = 0; t < tags->n; t++) {
            fprintf(report, "%s{\"tag\":", t ? "," : "");
            json_str(tags->v[t]);
            fprintf(report, ",\"roc_auc\":");
            json_num(r->tag_roc[t]);
            fprintf(report, ",\"pr_auc\":");
            json_num(r->tag_ap[t]);
            putc_report('}');
        }
        fprintf(report, "]}\n");
        return;
    }
    fprintf(report, "logreg  C %-8g validation ROC-AUC %.4f   test ROC-AUC %.4f   PR-AUC %.4f   (%d of %d tags scored)\n",
           r->C, best, r->roc_auc, r->pr_auc, r->n_tags_scored, tags->n);
    for (int t = 0; t < tags->n; t++) {
        if (isnan(r->tag_roc[t]))
            fprintf(report, "  %-24s not scored (no positive or no negative row in training or test)\n", tags->v[t]);
        else
            fprintf(report, "  %-24s ROC-AUC %.4f  PR-AUC %.4f\n", tags->v[t], r->tag_roc[t], r->tag_ap[t]);
    }
}

/* the command line */
struct opts {
    struct cmr_probe_cfg grid;
    const char *input, *label_key, *split_key;
    int which; /* 1 svm, 2 logreg, 3 both */
    int tags_mode, json;
    double tol;
};

static void parse_options(int argc, char **argv, struct opts *o)
{
    static const struct option opts[] = {
        {"classifier", required_argument, NULL, 'c'},
        {"C", required_argument, NULL, 'C'},
        {"tol", required_argument, NULL, 'o'},
        {"tags", no_argument, NULL, 'T'},
        {"label-key", required_argument, NULL, 'L'},
        {"split-key", required_argument, NULL, 'S'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:C:Tjqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (!strcmp(optarg, "svm"))
                o->which = 1;
            else if (!strcmp(optarg, "logreg"))
                o->which = 2;
            else if (!strcmp(optarg, "both"))
                o->which = 3;
            else
                cli_usage_error("--classifier takes svm, logreg or both, got '%s'", optarg);
            break;
        case 'C': parse_grid(optarg, &o->grid); break;
        case 'o': o->tol = cli_double("--tol", optarg, 1e-8, 1); break;
        case 'T': o->tags_mode = 1; break;
        case 'L':
            o->label_key = cli_nonempty("--label-key", "a metadata key", optarg);
            break;
        case 'S':
            o->split_key = cli_nonempty("--split-key", "a metadata key", optarg);
            break;
        case 'j': o->json = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    o->input = cli_one_input(argc, argv);
    if (o->tags_mode && o->which == 1)
        cli_usage_error("--tags uses logistic regression only; drop --classifier svm");
    if (!o->label_key)
        o->label_key = o->tags_mode ? "tags" : "label";
}

/* each track's split, and the names of its classes (or tags) */
static int *read_splits(const struct opts *o, const struct cmr_vectors *vs, struct names *names)
{
    int n = vs->n, left_out = 0;
    int *split = malloc(sizeof(int) * (size_t)n);
    if (!split)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_keep(split);
    for (int i = 0; i < n; i++) {
        const char *s = cmr_vectors_meta(vs, i, o->split_key);
        if (!s)
            cli_die(CLI_EXIT_DATA, "track \"%s\" has no '%s' metadata", vs->track[i], o->split_key);
        split[i] = split_of(s);
        if (split[i] == CMR_SPLIT_NONE) {
            if (!left_out++)
                cli_warn("track \"%s\": split '%s' is not training/validation/test: left out "
                         "(further ones counted)", vs->track[i], s);
            continue;
        }
        const char *l = cmr_vectors_meta(vs, i, o->label_key);
        if (!l)
            cli_die(CLI_EXIT_DATA, "track \"%s\" has no '%s' metadata", vs->track[i], o->label_key);
        if (!o->tags_mode) {
            if (!*l)
                cli_die(CLI_EXIT_DATA, "track \"%s\" has an empty '%s'", vs->track[i], o->label_key);
            names_add(names, l);
        } else {
            char *copy = strdup(l), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                names_add(names, t);
            free(copy);
        }
    }
    if (left_out > 1)
        cli_warn("%d tracks left out for their split", left_out);
    names_finish(names);
    return split;
}

/* the labels (y) or the tag matrix (tags) of data's tracks */
static void read_labels(const struct opts *o, const struct cmr_vectors *vs, const struct names *names,
                        struct cmr_probe_data *data)
{
    int n = vs->n;
    const int *split = data->split;
    if (o->tags_mode) {
        uint8_t *tagm;
        if (names->n == 0)
            cli_die(CLI_EXIT_DATA, "no track has a tag in '%s'", o->label_key);
        if (!(tagm = calloc((size_t)n * names->n, 1)))
            cli_die(CLI_EXIT_DATA, "out of memory");
        for (int i = 0; i < n; i++) {
            if (split[i] == CMR_SPLIT_NONE)
                continue;
            char *copy = strdup(cmr_vectors_meta(vs, i, o->label_key)), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                tagm[(size_t)i * names->n + names_find(names, t)] = 1;
            free(copy);
        }
        data->tags = tagm;
    } else {
        int *y = malloc(sizeof(int) * (size_t)n);
        if (!y)
            cli_die(CLI_EXIT_DATA, "out of memory");
        for (int i = 0; i < n; i++)
            y[i] = split[i] == CMR_SPLIT_NONE ? 0 : names_find(names, cmr_vectors_meta(vs, i, o->label_key));
        data->y = y;
    }
}

/* each classifier asked for, its grid search and its report */
static void run_probes(const struct opts *o, const struct cmr_probe_data *data, const struct names *names)
{
    struct cmr_error err = {0};
    if (!o->json) {
        int cnt[3] = {0};
        for (int i = 0; i < data->n; i++)
            if (data->split[i] != CMR_SPLIT_NONE)
                cnt[data->split[i]]++;
        fprintf(report, "cmr-probe: %d tracks (%d training, %d validation, %d test), %d features, %d %s\n",
               cnt[0] + cnt[1] + cnt[2], cnt[0], cnt[1], cnt[2], data->d, names->n,
               o->tags_mode ? "tags" : "classes");
    }
    for (int s = CMR_PROBE_SVM; s <= CMR_PROBE_LOGREG; s++) {
        if (o->tags_mode && s == CMR_PROBE_SVM)
            continue;
        if (!o->tags_mode && !(o->which & (1 << s)))
            continue;
        struct cmr_probe_cfg cfg = o->grid;
        cfg.solver = s;
        cfg.tol = o->tol;
        struct cmr_probe_result res;
        int rc = cmr_probe_run(&cfg, data, &res, &err);
        if (rc != CMR_OK)
            cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
        for (int i = 0; i < cfg.n_C; i++)
            cli_info("%s: C %g: validation %s %.4f", solver_name(s), cfg.C[i],
                     o->tags_mode ? "ROC-AUC" : "accuracy", res.val_score[i]);
        if (o->tags_mode)
            report_tags(&res, &cfg, names, data->d, o->json);
        else
            report_single(&res, &cfg, names, data->d, o->json);
        cmr_probe_result_free(&res);
    }
}

int main(int argc, char **argv)
{
    struct opts o = {.split_key = "split", .which = 3, .tol = CMR_PROBE_DEFAULT_TOL};
    cli_init("cmr-probe");
    o.grid = cmr_probe_cfg_default(CMR_PROBE_SVM);
    parse_options(argc, argv, &o);

    /* set up: the vectors, their splits and labels, standardised */
    struct cmr_reader *rd = cli_open_reader(o.input);
    struct cmr_frame hdr;
    cmr_frame_init(&hdr);
    cli_read_header(rd, &hdr);
    char *report_buf = NULL;
    size_t report_len = 0;
    if (!(report = open_memstream(&report_buf, &report_len)))
        cli_die(CLI_EXIT_DATA, "out of memory");
    struct cmr_vectors vs;
    struct cmr_error err = {0};
    int rc;
    cli_read_vectors(rd, &vs);
    struct names names = {0};
    int *split = read_splits(&o, &vs, &names);
    struct cmr_probe_data data = {.n = vs.n, .d = vs.d, .X = vs.X, .split = split, .n_classes = names.n,
                                  .n_tags = names.n};
    read_labels(&o, &vs, &names, &data);
    double *mean = malloc(sizeof(double) * (size_t)vs.d), *scale = malloc(sizeof(double) * (size_t)vs.d);
    if (!mean || !scale)
        cli_die(CLI_EXIT_DATA, "out of memory");
    rc = cmr_probe_standardize(&data, mean, scale, &err);
    if (rc != CMR_OK)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));

    /* run */
    run_probes(&o, &data, &names);
    for (int i = 0; i < names.n; i++)
        free(names.v[i]);
    free(names.v);
    free(split);
    free((void *)data.y);
    free((void *)data.tags);
    free(mean);
    free(scale);
    cmr_vectors_free(&vs);
    cmr_frame_free(&hdr);
    cmr_reader_free(rd);
    if (fclose(report) != 0)
        cli_die(CLI_EXIT_DATA, "out of memory");
    if (report_len && fwrite(report_buf, 1, report_len, stdout) != report_len)
        cli_die(CLI_EXIT_DATA, "error: writing output failed: %s", strerror(errno));
    free(report_buf);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
