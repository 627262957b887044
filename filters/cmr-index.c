/* cmr-index: a catalogue of tracks searchable for the nearest ones, on FAISS
 * (docs/index.md; the library is lib/index/index.h)
 *
 *   cmr-index build --out INDEX [OPTION]... [FILE|-]
 *   cmr-index add --index INDEX [FILE|-]
 *   cmr-index query --index INDEX [-k 10] [--exclude-self] [--tsv|--json] [FILE|-]
 *   cmr-index info INDEX
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/summary.h"
#include "frame.h"
#include "index/faiss_shim.h"
#include "index/index.h"
#include "util/atomic.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-index build --out INDEX [OPTION]... [FILE|-]\n"
        "       cmr-index add --index INDEX [OPTION]... [FILE|-]\n"
        "       cmr-index query --index INDEX [OPTION]... [FILE|-]\n"
        "       cmr-index info INDEX\n"
        "A catalogue of tracks, one vector each (\"summary\" frames of cmr-summarize\n"
        "or \"embedding\" frames), searchable for the k nearest tracks with FAISS.\n"
        "The index file keeps each track's id and metadata beside the vectors.\n"
        "\n"
        "build: a new index from FILE or stdin (one tensor frame per track)\n"
        "  -o, --out INDEX        the index file to write (atomically)\n"
        "  -T, --type TYPE        flat (exact), hnsw (graph) or ivfpq (compressed) [flat]\n"
        "  -M, --metric METRIC    cosine or l2 [cosine]\n"
        "      --hnsw-m M         hnsw: links per node [32] (2..256)\n"
        "      --ef-construction N  hnsw: build beam [80] (1..100000)\n"
        "      --float-storage    hnsw: keep float vectors, not 8-bit scalars\n"
        "      --nlist N          ivfpq: inverted lists [4 sqrt(n), a power of two]\n"
        "      --pq-m M           ivfpq: bytes per vector, a divisor of the length [d/8]\n"
        "      --ef-search N      hnsw: default query beam stored in the index [128]\n"
        "      --nprobe N         ivfpq: default lists visited stored in the index [32]\n"
        "      --refine R         ivfpq: also keep 8-bit codes of the vectors (d bytes\n"
        "                         each) and re-rank the PQ search's R x k best by\n"
        "                         them (FAISS IndexRefine) [0: no re-ranking]\n"
        "add: appends the tracks of FILE or stdin to INDEX (new ids only)\n"
        "  -i, --index INDEX\n"
        "query: the k nearest catalogue tracks to each tensor frame of FILE or stdin\n"
        "  -i, --index INDEX\n"
        "  -k, --k K              neighbours per query [10] (1..4000, at most the\n"
        "                         catalogue size)\n"
        "  -x, --exclude-self     leave the query's own track out of its answer\n"
        "      --tsv              a table: query_track rank track score (with a header)\n"
        "      --json             one JSON object per query and line\n"
        "      --ef-search N, --nprobe N, --refine R   override the index's defaults\n"
        "  -w, --window S         live: query with the last S seconds of \"embedding\"\n"
        "                         frames of each track (their mean, or mean and std\n"
        "                         for an index of summaries) instead of each frame\n"
        "  -e, --every S          live: one query per S seconds of stream [5]\n"
        "      --force            write binary frames even to a terminal\n"
        "common:\n"
        "  -t, --threads N        FAISS threads [OpenMP's default]\n"
        "  -q, --quiet            no warnings\n"
        "  -v, --verbose          more detail on stderr\n"
        "  -h, --help             this help\n"
        "\n"
        "Without --tsv or --json, query writes a \"neighbours\" frame per query\n"
        "(docs/frames.md): shape [k], the scores; meta \"neighbour.1\" .. \"neighbour.k\",\n"
        "the tracks, nearest first. Scores: cosine similarity (larger is nearer) or\n"
        "squared L2 distance (smaller is nearer). flat is exact, ranked as cmr-knn\n"
        "scores (cosine in double), ties by catalogue order; hnsw and ivfpq are\n"
        "approximate and give FAISS's estimated scores.\n"
        "\n"
        "Exit status: 0 ok; 1 bad input (a vector length or kind other than the\n"
        "index's, an empty catalogue, k larger than the catalogue, a missing,\n"
        "corrupt or truncated index file, NaN or infinite values, a track already\n"
        "in the index, an all-zero vector in an hnsw or ivfpq cosine index) or a\n"
        "write error; 2 usage. In a flat cosine index an all-zero vector (no\n"
        "direction) scores 0 against everything, with a warning, as in cmr-knn.\n");
    exit(code);
}

/* ---- reading the catalogue: one rank-1 tensor frame per track ---- */

struct catalogue {
    int64_t n, cap;
    int d;
    char kind[CMR_KIND_MAX];
    float *X;
    char **track;
    struct cmr_kv **meta;
    int *n_meta;
    int failed;
    int64_t zero; /* all-zero vectors */
};

static void read_catalogue(struct catalogue *c, const char *input)
{
    struct cmr_reader *rd = cli_open_reader(input);
    struct cmr_frame hdr, fr;
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cli_read_header(rd, &hdr);
    memset(c, 0, sizeof *c);
    const char *name = input && strcmp(input, "-") ? input : "stdin";
    int64_t in_track = 0; /* tensor frames of the open track */
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_HEADER)
            continue;
        if (fr.type == CMR_FRAME_END) {
            if (fr.error) {
                c->failed++;
                if (in_track) { /* a failed track's vector is left out */
                    c->n--;
                    free(c->track[c->n]);
                    for (int j = 0; j < c->n_meta[c->n]; j++) {
                        free(c->meta[c->n][j].key);
                        free(c->meta[c->n][j].val);
                    }
                    free(c->meta[c->n]);
                }
            }
            in_track = 0;
            continue;
        }
        if (strcmp(fr.kind, "summary") && strcmp(fr.kind, "embedding"))
            cli_wrong_kind(&fr, "summary or embedding");
        if (!c->kind[0])
            snprintf(c->kind, sizeof c->kind, "%s", fr.kind);
        else if (strcmp(c->kind, fr.kind))
            cli_die(CLI_EXIT_DATA, "%s: track \"%s\": a %s frame after %s frames: one kind per catalogue", name,
                    fr.track, fr.kind, c->kind);
        if (fr.ndim != 1)
            cli_die(CLI_EXIT_DATA, "%s: track \"%s\": a %s frame of rank %d, a catalogue takes vectors (rank 1)",
                    name, fr.track, fr.kind, fr.ndim);
        if (in_track++)
            cli_die(CLI_EXIT_DATA, "%s: track \"%s\" has more than one %s frame: a catalogue takes one vector "
                    "per track (summarise it first: cmr-summarize)", name, fr.track, fr.kind);
        if (c->n == 0)
            c->d = (int)fr.shape[0];
        else if (fr.shape[0] != c->d)
            cli_die(CLI_EXIT_DATA, "%s: track \"%s\": a vector of %lld values, the first track's has %d", name,
                    fr.track, (long long)fr.shape[0], c->d);
        if (c->d > CMR_INDEX_MAX_DIM)
            cli_die(CLI_EXIT_DATA, "%s: vectors of %d values, an index takes at most %d", name, c->d,
                    CMR_INDEX_MAX_DIM);
        if (!cmr_all_finite(fr.data, (size_t)c->d))
            cli_die(CLI_EXIT_DATA, "%s: track \"%s\": the vector has a NaN or infinite value", name, fr.track);
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 1024;
            c->X = realloc(c->X, sizeof(float) * (size_t)c->cap * (size_t)c->d);
            c->track = realloc(c->track, sizeof(char *) * (size_t)c->cap);
            c->meta = realloc(c->meta, sizeof(struct cmr_kv *) * (size_t)c->cap);
            c->n_meta = realloc(c->n_meta, sizeof(int) * (size_t)c->cap);
            if (!c->X || !c->track || !c->meta || !c->n_meta)
                cli_die(CLI_EXIT_DATA, "out of memory");
            cli_keep(c->X);
            cli_keep(c->track);
            cli_keep(c->meta);
            cli_keep(c->n_meta);
        }
        memcpy(c->X + (size_t)c->n * c->d, fr.data, sizeof(float) * (size_t)c->d);
        int j = 0;
        while (j < c->d && fr.data[j] == 0)
            j++;
        c->zero += j == c->d;
        /* the frame's strings move into the catalogue */
        c->track[c->n] = fr.track;
        fr.track = NULL;
        c->meta[c->n] = fr.meta;
        c->n_meta[c->n] = fr.n_meta;
        fr.meta = NULL;
        fr.n_meta = fr.cap_meta = 0;
        c->n++;
    }
    if (c->failed)
        cli_warn("%s: %d track%s failed upstream and %s left out", name, c->failed, c->failed == 1 ? "" : "s",
                 c->failed == 1 ? "is" : "are");
    if (c->zero)
        cli_warn("warning: %s: %lld of %lld tracks have an all-zero vector, which has no cosine: they score 0 "
                 "against every query", name, (long long)c->zero, (long long)c->n);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
}

static void free_catalogue(struct catalogue *c)
{
    for (int64_t i = 0; i < c->n; i++) {
        free(c->track[i]);
        for (int j = 0; j < c->n_meta[i]; j++) {
            free(c->meta[i][j].key);
            free(c->meta[i][j].val);
        }
        free(c->meta[i]);
    }
    free(c->X);
    free(c->track);
    free(c->meta);
    free(c->n_meta);
}

static struct cmr_index *load_index(const char *path)
{
    struct cmr_error err = {0};
    struct cmr_index *ix = cmr_index_load(path, &err);
    if (!ix)
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    return ix;
}

/* ---- query output ---- */

static void put_json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* TSV fields hold no tab or newline: those become spaces */
static void put_tsv_str(const char *s)
{
    for (; *s; s++)
        putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

enum { OUT_FRAMES, OUT_TSV, OUT_JSON };

struct query_out {
    int mode, k;
    struct cmr_writer *w;
    struct cmr_frame fr;
};

/* one query's answer. index: the query frame's index; time >= 0 in live mode */
static void emit(struct query_out *o, struct cmr_index *ix, const struct cmr_frame *q, double time,
                 const int64_t *pos, const float *score, int n)
{
    const char *qt = q->track;
    if (o->mode == OUT_TSV) {
        for (int r = 0; r < n; r++) {
            put_tsv_str(qt);
            if (time >= 0)
                printf("@%.1fs", time);
            else if (strcmp(q->kind, "summary"))
                printf("#%lld", (long long)q->index);
            printf("\t%d\t", r + 1);
            put_tsv_str(cmr_index_track(ix, pos[r]));
            printf("\t%.6f\n", (double)score[r]);
        }
    } else if (o->mode == OUT_JSON) {
        printf("{\"query\":");
        put_json_str(qt);
        printf(",\"index\":%lld", (long long)q->index);
        if (time >= 0)
            printf(",\"time\":%.3f", time);
        printf(",\"neighbours\":[");
        for (int r = 0; r < n; r++) {
            printf("%s{\"rank\":%d,\"track\":", r ? "," : "", r + 1);
            put_json_str(cmr_index_track(ix, pos[r]));
            printf(",\"score\":%.9g}", (double)score[r]);
        }
        printf("]}\n");
    } else {
        int64_t shape[1] = {n};
        cmr_frame_reset(&o->fr);
        if (cmr_frame_make_tensor(&o->fr, "neighbours", qt, 1, shape))
            cli_die(CLI_EXIT_DATA, "out of memory");
        o->fr.index = q->index;
        o->fr.offset = q->offset;
        o->fr.rate = q->rate;
        memcpy(o->fr.data, score, sizeof(float) * (size_t)n);
        char key[32];
        for (int r = 0; r < n; r++) {
            snprintf(key, sizeof key, "neighbour.%d", r + 1);
            if (cmr_frame_meta_set(&o->fr, key, cmr_index_track(ix, pos[r])))
                cli_die(CLI_EXIT_DATA, "out of memory");
        }
        if (time >= 0 && cmr_frame_info_set(&o->fr, "time", time))
            cli_die(CLI_EXIT_DATA, "out of memory");
        cli_put(o->w, &o->fr);
    }
    if (o->mode != OUT_FRAMES)
        fflush(stdout); /* live: each answer as it comes */
}

/* a query frame's stream time in seconds: its info "time" (the radio's
 * frames), else its offset in mel frames of 256 samples, else its index * 3 s */
static double frame_time(const struct cmr_frame *fr)
{
    double t;
    if (cmr_frame_info_get(fr, "time", &t))
        return t;
    if (fr->rate > 0)
        return (double)fr->offset * 256.0 / fr->rate;
    return (double)fr->index * 3.0;
}

struct window {
    int d;
    int64_t n, cap, head; /* ring of rows and their times */
    float *rows;
    double *t;
    struct cmr_summary *sum;
    double last_emit;
};

/* append a frame's row at time t to the window, then drop the rows older
 * than win seconds (keeping at least one) */
static void window_push(struct window *w, const struct cmr_frame *fr, double t, double win)
{
    int qd = w->d;
    if (w->n == w->cap) { /* grow the ring, oldest first */
        int64_t cap = w->cap ? 2 * w->cap : 16;
        float *r = malloc(sizeof(float) * (size_t)cap * qd);
        double *tt = malloc(sizeof(double) * (size_t)cap);
        if (!r || !tt)
            cli_die(CLI_EXIT_DATA, "out of memory");
        for (int64_t i = 0; i < w->n; i++) {
            int64_t j = (w->head + i) % w->cap;
            memcpy(r + i * qd, w->rows + j * qd, sizeof(float) * (size_t)qd);
            tt[i] = w->t[j];
        }
        free(w->rows);
        free(w->t);
        w->rows = r;
        w->t = tt;
        w->cap = cap;
        w->head = 0;
    }
    int64_t j = (w->head + w->n) % w->cap;
    memcpy(w->rows + j * qd, fr->data, sizeof(float) * (size_t)qd);
    w->t[j] = t;
    w->n++;
    while (w->n > 1 && w->t[w->head] <= t - win) {
        w->head = (w->head + 1) % w->cap;
        w->n--;
    }
}

/* the window's query vector of d values: the mean of its rows, or their
 * mean and std for an index of summaries */
static void window_vector(struct window *w, float *qv, int d)
{
    struct cmr_error err = {0};
    int qd = w->d;
    cmr_summary_reset(w->sum);
    for (int64_t i = 0; i < w->n; i++)
        if (cmr_summary_add(w->sum, w->rows + ((w->head + i) % w->cap) * qd, 1, &err))
            cli_die(CLI_EXIT_DATA, "%s", err.msg);
    float *tmp = malloc(sizeof(float) * 2 * (size_t)qd);
    if (!tmp || cmr_summary_get(w->sum, tmp, &err))
        cli_die(CLI_EXIT_DATA, "out of memory");
    memcpy(qv, tmp, sizeof(float) * (size_t)d); /* mean, or mean and std */
    free(tmp);
}

/* a query frame must be of the index's kind (embedding with --window), a
 * vector of its length (qd values with --window), all finite */
static void check_query_frame(const struct cmr_frame *fr, const char *name, const char *ikind, int d, int qd,
                              double win, int is_summary)
{
    const char *want = win > 0 ? "embedding" : ikind;
    if (strcmp(fr->kind, want)) {
        if (strcmp(fr->kind, "summary") && strcmp(fr->kind, "embedding"))
            cli_wrong_kind(fr, want);
        cli_die(CLI_EXIT_DATA, "%s: track \"%s\": a %s frame, but %s %s", name, fr->track, fr->kind,
                win > 0 ? "--window takes" : "the index holds", win > 0 ? "embedding frames" : ikind);
    }
    int64_t len = fr->ndim == 1 ? fr->shape[0] : -1;
    if (len != (win > 0 ? qd : d))
        cli_die(CLI_EXIT_DATA, "%s: track \"%s\": dimension mismatch: a %s frame of %s%lld values, the "
                "index holds vectors of %d%s", name, fr->track, fr->kind, fr->ndim == 1 ? "" : "rank > 1, ",
                (long long)(fr->ndim == 1 ? fr->shape[0] : (int64_t)cmr_frame_numel(fr)), d,
                win > 0 && is_summary ? " (summaries: the window's mean and std)" : "");
    if (!cmr_all_finite(fr->data, (size_t)len))
        cli_die(CLI_EXIT_DATA, "%s: track \"%s\": %s frame %lld has a NaN or infinite value", name,
                fr->track, fr->kind, (long long)fr->index);
}

/* the output's start: the header frame with the query's parameters, or the
 * TSV header line */
static void query_start(struct query_out *o, struct cmr_frame *hdr, const char *index_path, int excl,
                        double win, double every, int force)
{
    if (o->mode == OUT_FRAMES) {
        o->w = cli_stdout_writer(force);
        cmr_frame_stage_param(hdr, "index", "%s", index_path);
        cmr_frame_stage_param(hdr, "k", "%d", o->k);
        cmr_frame_stage_param(hdr, "exclude_self", "%d", excl);
        if (win > 0) {
            cmr_frame_stage_param(hdr, "window", "%g", win);
            cmr_frame_stage_param(hdr, "every", "%g", every);
        }
        cli_put(o->w, hdr);
    } else if (o->mode == OUT_TSV) {
        printf("query_track\trank\ttrack\tscore\n");
    }
}

static int cmd_query(const char *index_path, const char *input, int k, int excl, int mode, int ef,
                     int nprobe, int refine, double win, double every, int force)
{
    struct cmr_index *ix = load_index(index_path);
    struct cmr_error err = {0};
    if (cmr_index_set_search(ix, ef, nprobe, refine, &err))
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    int d = cmr_index_dim(ix);
    const char *ikind = cmr_index_kind(ix);
    int is_summary = !strcmp(ikind, "summary");
    int64_t n_ix = cmr_index_size(ix);
    if (k > n_ix - (excl ? 1 : 0))
        cli_die(CLI_EXIT_DATA, "%s: k = %d, but the index holds %lld track%s%s", index_path, k, (long long)n_ix,
                n_ix == 1 ? "" : "s", excl ? " and --exclude-self may leave one out" : "");
    /* live: the window summarises d/2 (summary index) or d (embedding index) values */
    int qd = win > 0 && is_summary ? d / 2 : d;
    if (win > 0 && is_summary && d % 2)
        cli_die(CLI_EXIT_DATA, "%s: an index of summaries of odd length %d", index_path, d);

    struct cmr_reader *rd = cli_open_reader(input);
    const char *name = input && strcmp(input, "-") ? input : "stdin";
    struct cmr_frame hdr, fr;
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cli_read_header(rd, &hdr);
    struct query_out o = {.mode = mode, .k = k};
    cmr_frame_init(&o.fr);
    query_start(&o, &hdr, index_path, excl, win, every, force);
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)k);
    float *score = malloc(sizeof(float) * (size_t)k);
    float *qv = malloc(sizeof(float) * (size_t)d);
    struct window w = {.d = qd};
    if (!pos || !score || !qv)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_keep(pos); /* until exit: a bad frame below ends the program with cli_die */
    cli_keep(score);
    cli_keep(qv);
    if (win > 0 && !(w.sum = cmr_summary_new(qd, &err)))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, CMR_ENOMEM));
    cli_keep(w.sum);
    int64_t queries = 0;
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_HEADER)
            continue;
        if (fr.type == CMR_FRAME_END) {
            if (mode == OUT_FRAMES)
                cli_put(o.w, &fr);
            w.n = w.head = 0; /* a new track starts a new window */
            continue;
        }
        check_query_frame(&fr, name, ikind, d, qd, win, is_summary);
        double t = -1;
        if (win > 0) {
            t = frame_time(&fr);
            window_push(&w, &fr, t, win);
            if (w.n > 1 && t - w.last_emit < every)
                continue;
            w.last_emit = t;
            window_vector(&w, qv, d);
        } else {
            memcpy(qv, fr.data, sizeof(float) * (size_t)d);
        }
        int64_t ex = excl ? cmr_index_find(ix, fr.track) : -1;
        int found = 0;
        if (cmr_index_search(ix, 1, qv, k, excl ? &ex : NULL, pos, score, &found, &err))
            cli_die(CLI_EXIT_DATA, "%s: track \"%s\": %s", name, fr.track, err.msg);
        emit(&o, ix, &fr, t, pos, score, found);
        queries++;
    }
    cli_info("%lld quer%s against %lld tracks (%s, %s)", (long long)queries, queries == 1 ? "y" : "ies",
             (long long)n_ix, cmr_index_type_name(cmr_index_config(ix)->type), cmr_index_factory(ix));
    if (o.w)
        cmr_writer_free(o.w);
    cmr_frame_free(&o.fr);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    cmr_summary_free(w.sum);
    free(w.rows);
    free(w.t);
    free(pos);
    free(score);
    free(qv);
    cmr_index_free(ix);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}

static int cmd_info(const char *path)
{
    struct cmr_index *ix = load_index(path);
    const struct cmr_index_cfg *c = cmr_index_config(ix);
    size_t fb = cmr_index_faiss_bytes(ix);
    printf("index     %s\n", path);
    printf("tracks    %lld\n", (long long)cmr_index_size(ix));
    printf("dim       %d (%s frames)\n", cmr_index_dim(ix), cmr_index_kind(ix));
    printf("type      %s (FAISS \"%s\")\n", cmr_index_type_name(c->type), cmr_index_factory(ix));
    printf("metric    %s\n", cmr_index_metric_name(c->metric));
    if (c->type == CMR_INDEX_HNSW)
        printf("hnsw      M %d, efConstruction %d, efSearch %d, %s storage\n", c->hnsw_m, c->ef_construction,
               c->ef_search, c->sq8 ? "8-bit" : "float");
    if (c->type == CMR_INDEX_IVFPQ)
        printf("ivfpq     %d lists, %d bytes per vector, nprobe %d%s", c->nlist, c->pq_m, c->nprobe,
               c->refine ? "" : "\n");
    if (c->type == CMR_INDEX_IVFPQ && c->refine)
        printf(", re-ranked by 8-bit codes: %d x k candidates\n", c->refine);
    printf("faiss     %zu bytes (%.1f per track)\n", fb, (double)fb / (double)cmr_index_size(ix));
    cmr_index_free(ix);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}

/* the command line after the command's name */
struct options {
    struct cmr_index_cfg cfg;
    const char *out, *index;
    int k, excl, mode, ef, nprobe, refine, force;
    int set_build, set_query; /* an option of build, of query, was given */
    double win, every;
};

static void parse_options(struct options *o, int argc, char **argv)
{
    enum { O_HNSW_M = 256, O_EFC, O_EFS, O_FLOAT, O_NLIST, O_PQM, O_NPROBE, O_REFINE, O_TSV, O_JSON, O_FORCE };
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"index", required_argument, NULL, 'i'},
        {"type", required_argument, NULL, 'T'},
        {"metric", required_argument, NULL, 'M'},
        {"hnsw-m", required_argument, NULL, O_HNSW_M},
        {"ef-construction", required_argument, NULL, O_EFC},
        {"ef-search", required_argument, NULL, O_EFS},
        {"float-storage", no_argument, NULL, O_FLOAT},
        {"nlist", required_argument, NULL, O_NLIST},
        {"pq-m", required_argument, NULL, O_PQM},
        {"nprobe", required_argument, NULL, O_NPROBE},
        {"refine", required_argument, NULL, O_REFINE},
        {"k", required_argument, NULL, 'k'},
        {"exclude-self", no_argument, NULL, 'x'},
        {"tsv", no_argument, NULL, O_TSV},
        {"json", no_argument, NULL, O_JSON},
        {"window", required_argument, NULL, 'w'},
        {"every", required_argument, NULL, 'e'},
        {"force", no_argument, NULL, O_FORCE},
        {"threads", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct cmr_index_cfg *cfg = &o->cfg;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:i:T:M:k:xw:e:t:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = cli_nonempty("--out", "a file", optarg); break;
        case 'i': o->index = cli_nonempty("--index", "a file", optarg); break;
        case 'T':
            if ((cfg->type = cmr_index_type_parse(optarg)) < 0)
                cli_usage_error("--type takes flat, hnsw or ivfpq, got '%s'", optarg);
            o->set_build = 1;
            break;
        case 'M':
            if ((cfg->metric = cmr_index_metric_parse(optarg)) < 0)
                cli_usage_error("--metric takes cosine or l2, got '%s'", optarg);
            o->set_build = 1;
            break;
        case O_HNSW_M: cfg->hnsw_m = (int)cli_long("--hnsw-m", optarg, 2, 256); o->set_build = 1; break;
        case O_EFC:
            cfg->ef_construction = (int)cli_long("--ef-construction", optarg, 1, 100000);
            o->set_build = 1;
            break;
        case O_FLOAT: cfg->sq8 = 0; o->set_build = 1; break;
        case O_NLIST: cfg->nlist = (int)cli_long("--nlist", optarg, 1, 1 << 20); o->set_build = 1; break;
        case O_PQM: cfg->pq_m = (int)cli_long("--pq-m", optarg, 1, CMR_INDEX_MAX_DIM); o->set_build = 1; break;
        case O_EFS: o->ef = (int)cli_long("--ef-search", optarg, 1, 100000); break;
        case O_NPROBE: o->nprobe = (int)cli_long("--nprobe", optarg, 1, 1 << 20); break;
        case O_REFINE: o->refine = (int)cli_long("--refine", optarg, 1, 1000); break;
        case 'k': o->k = (int)cli_long("-k", optarg, 1, CMR_INDEX_MAX_K); o->set_query = 1; break;
        case 'x': o->excl = 1; o->set_query = 1; break;
        case O_TSV: o->mode = OUT_TSV; o->set_query = 1; break;
        case O_JSON: o->mode = OUT_JSON; o->set_query = 1; break;
        case 'w': o->win = cli_double("--window", optarg, 0.001, 86400); o->set_query = 1; break;
        case 'e': o->every = cli_double("--every", optarg, 0, 86400); o->set_query = 1; break;
        case O_FORCE: o->force = 1; break;
        case 't': cmr_faiss_threads((int)cli_long("--threads", optarg, 1, 1024)); break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
}

/* build: a new index of the catalogue, saved to o->out; add: the catalogue
 * appended to the index o->index, saved in its place */
static int cmd_build_add(const char *cmd, struct options *o, const char *input)
{
    struct cmr_error err = {0};
    struct catalogue cat;
    struct cmr_index *ix = NULL;
    const char *out = o->out;
    if (!strcmp(cmd, "add"))
        ix = load_index(o->index);
    read_catalogue(&cat, input);
    const char *name = input && strcmp(input, "-") ? input : "stdin";
    if (!strcmp(cmd, "build")) {
        if (cat.n == 0)
            cli_die(CLI_EXIT_DATA, "%s: the catalogue is empty: no summary or embedding frames", name);
        o->cfg.ef_search = o->ef ? o->ef : o->cfg.ef_search;
        o->cfg.nprobe = o->nprobe ? o->nprobe : o->cfg.nprobe;
        o->cfg.refine = o->refine;
        ix = cmr_index_build(&o->cfg, cat.n, cat.d, cat.X, (const char *const *)cat.track, cat.meta, cat.n_meta,
                             cat.kind, &err);
        if (!ix)
            cli_die(CLI_EXIT_DATA, "%s: %s", name, err.msg);
    } else {
        if (cat.n == 0) {
            cli_warn("%s: no tracks to add", name);
        } else {
            if (strcmp(cat.kind, cmr_index_kind(ix)))
                cli_die(CLI_EXIT_DATA, "%s: %s frames, but the index holds %s vectors", name, cat.kind,
                        cmr_index_kind(ix));
            if (cat.d != cmr_index_dim(ix))
                cli_die(CLI_EXIT_DATA, "%s: dimension mismatch: vectors of %d values, the index holds %d", name,
                        cat.d, cmr_index_dim(ix));
            if (cmr_index_add(ix, cat.n, cat.X, (const char *const *)cat.track, cat.meta, cat.n_meta, &err))
                cli_die(CLI_EXIT_DATA, "%s: %s", name, err.msg);
        }
        out = o->index;
    }
    if (cmr_index_save(ix, out, &err))
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    cli_info("%s: %lld tracks of %d values (%s, FAISS \"%s\")", out, (long long)cmr_index_size(ix),
             cmr_index_dim(ix), cmr_index_type_name(cmr_index_config(ix)->type), cmr_index_factory(ix));
    free_catalogue(&cat);
    cmr_index_free(ix);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct options o = {.k = 10, .mode = OUT_FRAMES, .every = 5};

    cli_init("cmr-index");
    cmr_index_cfg_default(&o.cfg);
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
        usage(stdout, CLI_EXIT_OK);
    if (argc < 2)
        cli_usage_error("a command is needed: build, add, query or info");
    const char *cmd = argv[1];
    if (strcmp(cmd, "build") && strcmp(cmd, "add") && strcmp(cmd, "query") && strcmp(cmd, "info"))
        cli_usage_error("unknown command '%s': build, add, query or info", cmd);
    argv++;
    argc--;
    parse_options(&o, argc, argv);
    if (!strcmp(cmd, "info")) {
        if (optind != argc - 1)
            cli_usage_error("info takes one INDEX file");
        return cmd_info(argv[optind]);
    }
    const char *input = cli_one_input(argc, argv);
    if (strcmp(cmd, "build") && o.set_build)
        cli_usage_error("--type, --metric and the build parameters go with build");
    if (strcmp(cmd, "query") && o.set_query)
        cli_usage_error("-k, --exclude-self, --tsv, --json, --window and --every go with query");
    if (!strcmp(cmd, "build") ? o.index != NULL : o.out != NULL)
        cli_usage_error("%s takes %s", cmd, !strcmp(cmd, "build") ? "--out INDEX" : "--index INDEX");
    struct cmr_error err = {0};
    if (!strcmp(cmd, "query")) {
        if (!o.index)
            cli_usage_error("query needs --index INDEX");
        return cmd_query(o.index, input, o.k, o.excl, o.mode, o.ef, o.nprobe, o.refine, o.win, o.every, o.force);
    }
    if (!strcmp(cmd, "build")) {
        if (!o.out)
            cli_usage_error("build needs --out INDEX");
        const char *ins[1] = {input ? input : "-"};
        if (cmr_output_check("--out", o.out, ins, 1, CMR_ATOMIC_STREAM, &err))
            cli_die(CLI_EXIT_DATA, "%s", err.msg);
    } else if (!o.index) {
        cli_usage_error("add needs --index INDEX");
    }
    return cmd_build_add(cmd, &o, input);
}
