/* cmr-dump: frames -> one text line per frame, or one .npy per track
 * (see docs/filters.md#cmr-dump)
 *
 *   cmr-dump [OPTION]... [FILE|-]
 *   cmr-dump --npy DIR [FILE|-]
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "frame.h"
#include "npy.h"
#include "util/atomic.h"

#define NAME_MAX_BYTES 120

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-dump [OPTION]... [FILE|-]\n"
        "Print a frame stream as text, one line per frame, or write it as NumPy\n"
        "arrays, one .npy per track. Reads FILE or stdin.\n"
        "\n"
        "  -n, --values N      data values printed per tensor frame [4] (0..1000000)\n"
        "      --npy DIR       write DIR/<track>.npy per track and DIR/index.tsv\n"
        "                      (columns: track, file, then one per metadata key)\n"
        "                      instead of text; audio/mel/mfcc frames are joined\n"
        "                      along time: (T, ...); other kinds are stacked along\n"
        "                      a new first axis: (frames, ...)\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       with --npy, one line per file written\n"
        "  -h, --help          this help\n"
        "\n"
        "Text lines:\n"
        "  header version=V provenance=[PROGRAM{\"param\":\"value\",...},...]\n"
        "  tensor kind=K track=\"ID\" index=I offset=O rate=R shape=[...] min=.. max=.. mean=..\n"
        "         data=[first N values] meta={...} info={...}\n"
        "  end track=\"ID\" frames=N [error=\"...\"]\n"
        "Strings are JSON-quoted.\n"
        "\n"
        "Exit status: 0 ok, 1 bad or truncated input or a write error, 2 usage.\n");
    exit(code);
}

/* ------------------------------------------------------------------ */
/* text                                                                */

static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void put_kvs(FILE *f, const struct cmr_kv *kv, int n)
{
    fputc('{', f);
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        put_json_str(f, kv[i].key);
        fputc(':', f);
        put_json_str(f, kv[i].val);
    }
    fputc('}', f);
}

static void print_frame(FILE *f, const struct cmr_frame *fr, long values)
{
    switch (fr->type) {
    case CMR_FRAME_HEADER:
        fprintf(f, "header version=%d provenance=[", fr->version);
        for (int i = 0; i < fr->n_stages; i++) {
            const struct cmr_stage *s = &fr->stages[i];
            fprintf(f, "%s%s", i ? "," : "", s->program ? s->program : "?");
            put_kvs(f, s->params, s->n_params);
        }
        fputs("]\n", f);
        break;
    case CMR_FRAME_TENSOR: {
        size_t n = cmr_frame_numel(fr);
        double mn = 0, mx = 0, sum = 0;
        fprintf(f, "tensor kind=%s track=", fr->kind);
        put_json_str(f, fr->track);
        fprintf(f, " index=%lld offset=%lld rate=%.10g shape=[", (long long)fr->index,
                (long long)fr->offset, fr->rate);
        for (int i = 0; i < fr->ndim; i++)
            fprintf(f, "%s%lld", i ? "," : "", (long long)fr->shape[i]);
        fputc(']', f);
        for (size_t i = 0; i < n; i++) {
            double v = fr->data[i];
            if (i == 0 || v < mn)
                mn = v;
            if (i == 0 || v > mx)
                mx = v;
            sum += v;
        }
        if (n)
            fprintf(f, " min=%.6g max=%.6g mean=%.6g", mn, mx, sum / (double)n);
        fputs(" data=[", f);
        for (size_t i = 0; i < n && i < (size_t)values; i++)
            fprintf(f, "%s%.6g", i ? "," : "", fr->data[i]);
        if (n > (size_t)values)
            fputs(values ? ",..." : "...", f);
        fputs("] meta=", f);
        put_kvs(f, fr->meta, fr->n_meta);
        fputs(" info={", f);
        for (int i = 0; i < fr->n_info; i++) {
            if (i)
                fputc(',', f);
            put_json_str(f, fr->info[i].key);
            fprintf(f, ":%.10g", fr->info[i].val);
        }
        fputs("}\n", f);
        break;
    }
    case CMR_FRAME_END:
        fputs("end track=", f);
        put_json_str(f, fr->track);
        fprintf(f, " frames=%lld", (long long)fr->frames);
        if (fr->error) {
            fputs(" error=", f);
            put_json_str(f, fr->error);
        }
        fputc('\n', f);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ */
/* --npy                                                               */

/* a set of used file names (lower case), open addressing */
struct nameset {
    char **slot;
    size_t cap, n;
};

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int nameset_has(const struct nameset *ns, const char *s)
{
    if (!ns->cap)
        return 0;
    for (size_t i = hash_str(s) & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
        if (!ns->slot[i])
            return 0;
        if (strcmp(ns->slot[i], s) == 0)
            return 1;
    }
}

static void nameset_put(struct nameset *ns, char *s)
{
    size_t i = hash_str(s) & (ns->cap - 1);
    while (ns->slot[i])
        i = (i + 1) & (ns->cap - 1);
    ns->slot[i] = s;
    ns->n++;
}

static void nameset_add(struct nameset *ns, const char *s)
{
    char *d;
    if (2 * (ns->n + 1) > ns->cap) {
        struct nameset bigger = {.cap = ns->cap ? ns->cap * 2 : 256};
        bigger.slot = calloc(bigger.cap, sizeof *bigger.slot);
        if (!bigger.slot)
            cli_die(CLI_EXIT_DATA, "out of memory");
        for (size_t i = 0; i < ns->cap; i++)
            if (ns->slot[i])
                nameset_put(&bigger, ns->slot[i]);
        free(ns->slot);
        *ns = bigger;
    }
    if (!(d = strdup(s)))
        cli_die(CLI_EXIT_DATA, "out of memory");
    nameset_put(ns, d);
}

static void nameset_free(struct nameset *ns)
{
    for (size_t i = 0; i < ns->cap; i++)
        free(ns->slot[i]);
    free(ns->slot);
}

/* a safe, unique file name for a track id: [A-Za-z0-9._+-] kept, every other
 * byte run becomes one '_', no leading '.', '_' or '-', at most NAME_MAX_BYTES bytes, then
 * "-2", "-3", ... if the name (compared case-insensitively) is taken */
static char *file_name(struct nameset *used, const char *track)
{
    char base[NAME_MAX_BYTES + 1], cand[NAME_MAX_BYTES + 32], low[sizeof cand];
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)track; *p && k < NAME_MAX_BYTES; p++) {
        int okc = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '.' || *p == '_' || *p == '-' || *p == '+';
        if (!okc) {
            if (k > 0 && base[k - 1] != '_')
                base[k++] = '_';
            continue;
        }
        if (k == 0 && (*p == '.' || *p == '_' || *p == '-'))
            continue;   /* no hidden files, no names that look like options */
        base[k++] = (char)*p;
    }
    while (k > 0 && base[k - 1] == '_')
        k--;
    base[k] = 0;
    if (!k)
        strcpy(base, "track");
    for (unsigned n = 1;; n++) {
        if (n == 1)
            snprintf(cand, sizeof cand, "%s.npy", base);
        else
            snprintf(cand, sizeof cand, "%s-%u.npy", base, n);
        for (size_t i = 0; i <= strlen(cand); i++)
            low[i] = (char)((cand[i] >= 'A' && cand[i] <= 'Z') ? cand[i] + 32 : cand[i]);
        if (!nameset_has(used, low)) {
            nameset_add(used, low);
            char *r = strdup(cand);
            if (!r)
                cli_die(CLI_EXIT_DATA, "out of memory");
            return r;
        }
    }
}

/* one row of index.tsv */
struct row {
    char *track, *file;
    struct cmr_kv *meta;
    int n_meta;
};

struct npy_out {
    const char *dir;
    const char *input;      /* the input stream, "-" for stdin: never overwritten */
    struct nameset used;
    struct row *rows;
    size_t n_rows, cap_rows;
    char **keys;            /* metadata keys, in order of first appearance */
    int n_keys;
    /* the track being written */
    struct cmr_npy *w;
    char *file;             /* its file name within dir */
    char kind[CMR_KIND_MAX];
    int concat;             /* 1: join along axis 0; 0: stack on a new axis */
    int tail_ndim;
    int64_t tail[CMR_FRAME_MAX_DIMS];
    int ndim0;              /* the first frame's shape, for messages */
    int64_t shape0[CMR_FRAME_MAX_DIMS];
    int64_t next_offset;
    struct cmr_frame first; /* first frame's metadata */
    size_t empty, failed;
};

static int is_time_stream(const char *kind)
{
    return !strcmp(kind, "audio") || !strcmp(kind, "mel") || !strcmp(kind, "mfcc");
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

static void npy_tensor(struct npy_out *o, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    char path[4096], a[128], b[128];

    if (!o->w) {
        /* the track's first frame */
        o->concat = is_time_stream(fr->kind);
        strcpy(o->kind, fr->kind);
        o->tail_ndim = o->concat ? fr->ndim - 1 : fr->ndim;
        for (int i = 0; i < o->tail_ndim; i++)
            o->tail[i] = fr->shape[i + (o->concat ? 1 : 0)];
        o->next_offset = fr->offset;
        o->ndim0 = fr->ndim;
        memcpy(o->shape0, fr->shape, sizeof o->shape0);
        o->file = file_name(&o->used, fr->track);
        snprintf(path, sizeof path, "%s/%s", o->dir, o->file);
        if (cmr_same_file(path, o->input))
            cli_die(CLI_EXIT_USAGE, "--npy: %s is the input: writing it would destroy the input", path);
        o->w = cmr_npy_create(path, o->tail_ndim, o->tail, &err);
        if (!o->w)
            cli_die(CLI_EXIT_DATA, "%s", err.msg);
        cmr_frame_reset(&o->first);
        if (cmr_frame_meta_copy(&o->first, fr) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "out of memory");
    } else {
        int same = strcmp(o->kind, fr->kind) == 0 &&
                   fr->ndim == o->tail_ndim + (o->concat ? 1 : 0);
        for (int i = 0; same && i < o->tail_ndim; i++)
            same = fr->shape[i + (o->concat ? 1 : 0)] == o->tail[i];
        if (!same) {
            shape_str(a, sizeof a, fr->ndim, fr->shape);
            shape_str(b, sizeof b, o->ndim0, o->shape0);
            cmr_npy_abort(o->w);
            o->w = NULL;
            cli_die(CLI_EXIT_DATA, "track \"%s\": frame %lld is %s %s, the first frame was %s %s; "
                    "cannot put them in one array", fr->track, (long long)fr->index, fr->kind, a, o->kind, b);
        }
    }
    if (o->concat) {
        if (fr->offset != o->next_offset) {
            cmr_npy_abort(o->w);
            o->w = NULL;
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld starts at offset %lld, expected %lld; "
                    "cannot join a stream with gaps or overlaps", fr->track, fr->kind,
                    (long long)fr->index, (long long)fr->offset, (long long)o->next_offset);
        }
        o->next_offset += fr->shape[0];
    }
    if (cmr_npy_append(o->w, fr->data, o->concat ? (size_t)fr->shape[0] : 1, &err) != CMR_OK) {
        cmr_npy_abort(o->w);
        o->w = NULL;
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    }
}

static void add_key(struct npy_out *o, const char *key)
{
    for (int i = 0; i < o->n_keys; i++)
        if (!strcmp(o->keys[i], key))
            return;
    char **p = realloc(o->keys, (size_t)(o->n_keys + 1) * sizeof *p);
    if (!p || !(p[o->n_keys] = strdup(key)))
        cli_die(CLI_EXIT_DATA, "out of memory");
    o->keys = p;
    o->n_keys++;
}

static void npy_end(struct npy_out *o, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    struct row *r;
    int64_t rows = cmr_npy_rows(o->w);

    if (fr->error) {
        cli_warn("track \"%s\" failed upstream (%s): no .npy written", fr->track, fr->error);
        cmr_npy_abort(o->w);
        o->w = NULL;
        o->failed++;
        return;
    }
    if (!o->w) {
        cli_info("track \"%s\" has no frames: no .npy written", fr->track);
        o->empty++;
        return;
    }
    if (cmr_npy_finish(o->w, &err) != CMR_OK) {
        o->w = NULL;
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    }
    o->w = NULL;
    cli_info("wrote %s/%s: %lld x %s", o->dir, o->file, (long long)rows, o->kind);
    if (o->n_rows == o->cap_rows) {
        size_t cap = o->cap_rows ? o->cap_rows * 2 : 64;
        struct row *p = realloc(o->rows, cap * sizeof *p);
        if (!p)
            cli_die(CLI_EXIT_DATA, "out of memory");
        o->rows = p;
        o->cap_rows = cap;
    }
    r = &o->rows[o->n_rows++];
    memset(r, 0, sizeof *r);
    r->track = strdup(fr->track);
    r->file = o->file;
    o->file = NULL;
    if (!r->track)
        cli_die(CLI_EXIT_DATA, "out of memory");
    if (o->first.n_meta) {
        r->meta = o->first.meta;   /* take ownership */
        r->n_meta = o->first.n_meta;
        o->first.meta = NULL;
        o->first.n_meta = o->first.cap_meta = 0;
        for (int i = 0; i < r->n_meta; i++)
            add_key(o, r->meta[i].key);
    }
}

/* a TSV field: TAB, newline, CR and backslash escaped as \t \n \r \\ */
static void put_tsv(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\\': fputs("\\\\", f); break;
        default: fputc(*s, f);
        }
    }
}

static void write_index(struct npy_out *o)
{
    char path[4096];
    struct cmr_atomic a;
    struct cmr_error err = {0};
    FILE *f;

    snprintf(path, sizeof path, "%s/index.tsv", o->dir);
    if (cmr_atomic_open(&a, path, CMR_ATOMIC_STREAM, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    f = a.f;
    fputs("track\tfile", f);
    for (int k = 0; k < o->n_keys; k++) {
        fputc('\t', f);
        /* the two fixed columns keep their names; a metadata key that clashes gets "meta." */
        if (!strcmp(o->keys[k], "track") || !strcmp(o->keys[k], "file"))
            fputs("meta.", f);
        put_tsv(f, o->keys[k]);
    }
    fputc('\n', f);
    for (size_t i = 0; i < o->n_rows; i++) {
        const struct row *r = &o->rows[i];
        put_tsv(f, r->track);
        fputc('\t', f);
        put_tsv(f, r->file);
        for (int k = 0; k < o->n_keys; k++) {
            fputc('\t', f);
            for (int m = 0; m < r->n_meta; m++)
                if (!strcmp(r->meta[m].key, o->keys[k]))
                    put_tsv(f, r->meta[m].val);
        }
        fputc('\n', f);
    }
    if (cmr_atomic_commit(&a, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
}

static void npy_free(struct npy_out *o)
{
    for (size_t i = 0; i < o->n_rows; i++) {
        struct row *r = &o->rows[i];
        for (int m = 0; m < r->n_meta; m++) {
            free(r->meta[m].key);
            free(r->meta[m].val);
        }
        free(r->meta);
        free(r->track);
        free(r->file);
    }
    free(o->rows);
    for (int k = 0; k < o->n_keys; k++)
        free(o->keys[k]);
    free(o->keys);
    free(o->file);
    nameset_free(&o->used);
    cmr_frame_free(&o->first);
}

/* the temporary of an unfinished .npy must not survive an error exit */
static struct npy_out *g_out;
static void cleanup(void)
{
    if (g_out && g_out->w) {
        cmr_npy_abort(g_out->w);
        g_out->w = NULL;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"values", required_argument, NULL, 'n'},
        {"npy", required_argument, NULL, 'N'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long values = 4;
    const char *npy_dir = NULL, *input = NULL;
    struct cmr_reader *rd;
    struct cmr_frame fr;
    struct npy_out out;
    struct cmr_error err = {0};
    int c;

    cli_init("cmr-dump");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': values = cli_long("--values", optarg, 0, 1000000); break;
        case 'N':
            npy_dir = cli_nonempty("--npy", "a directory", optarg);
            break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    input = cli_one_input(argc, argv);

    memset(&out, 0, sizeof out);
    cmr_frame_init(&out.first);
    if (npy_dir) {
        struct stat st;
        if (mkdir(npy_dir, 0777) != 0 && errno != EEXIST)
            cli_die(CLI_EXIT_DATA, "%s: cannot create directory: %s", npy_dir, strerror(errno));
        if (stat(npy_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            cli_die(CLI_EXIT_DATA, "%s: not a directory", npy_dir);
        out.dir = npy_dir;
        out.input = input ? input : "-";
        /* index.tsv can be written, and no input is in the way; the
         * temporaries of a killed run go */
        char index[4096];
        const char *ins[] = {out.input};
        snprintf(index, sizeof index, "%s/index.tsv", npy_dir);
        if (cmr_output_check("--npy", index, ins, 1, CMR_ATOMIC_STREAM, &err))
            cli_die(err.code == CMR_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_DATA, "%s", err.msg);
        cmr_atomic_clean(npy_dir, NULL);
        g_out = &out;
        atexit(cleanup);
    }
    rd = cli_open_reader(input);
    cmr_frame_init(&fr);
    while (cli_next(rd, &fr)) {
        if (!npy_dir) {
            print_frame(stdout, &fr, values);
            continue;
        }
        if (fr.type == CMR_FRAME_TENSOR)
            npy_tensor(&out, &fr);
        else if (fr.type == CMR_FRAME_END)
            npy_end(&out, &fr);
    }
    if (npy_dir) {
        write_index(&out);
        if (out.empty)
            cli_warn("%zu track%s had no frames and got no .npy", out.empty, out.empty == 1 ? "" : "s");
        if (out.failed)
            cli_warn("%zu track%s failed upstream and got no .npy", out.failed, out.failed == 1 ? "" : "s");
        cli_info("%zu .npy files and index.tsv in %s", out.n_rows, npy_dir);
        g_out = NULL;
        npy_free(&out);
    }
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
