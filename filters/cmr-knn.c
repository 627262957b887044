/* cmr-knn: ItemKNN-CBF playlist continuation, HR@10 and MPR (see
 * docs/evaluation.md and lib/eval/knn.h for the exact definitions)
 *
 *   cmr-knn [OPTION]... [FILE|-]
 *
 * Reads one vector per track (cmr-summarize's "summary" frames), the
 * playlists from the metadata `playlists` (comma-separated ids) or from a
 * TSV file, and prints the hit rate at 10 and the mean percentile rank. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/knn.h"
#include "eval/vectors.h"
#include "frame.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-knn [OPTION]... [FILE|-]\n"
        "ItemKNN-CBF evaluation of playlist continuation on one vector per track\n"
        "(cmr-summarize's \"summary\" frames). For each playlist, its first Q tracks\n"
        "in stream order are the queries; every other track of the playlist is\n"
        "ranked among itself and N negatives drawn (seeded, without replacement)\n"
        "from the tracks outside the playlist, by mean cosine similarity to the\n"
        "queries. Ties count against the item: rank = 1 + #{negatives scoring >=\n"
        "the item}. HR@10 = fraction of items with rank <= 10; MPR = mean of\n"
        "(rank - 1) / N. Both are means over all items of all playlists.\n"
        "\n"
        "  -Q, --queries Q       query tracks per playlist [3] (1..1000)\n"
        "  -N, --negatives N     negatives per item [100] (1..10000000), or 'all':\n"
        "                        every track outside the playlist (deterministic)\n"
        "  -s, --seed S          shuffle each playlist before taking its queries,\n"
        "                        and seed the negatives with S [no shuffle; seed 0]\n"
        "  -p, --playlists FILE  playlists from a TSV file with a header line and\n"
        "                        columns 'track' and 'playlists' (comma-separated\n"
        "                        ids; other columns are ignored) instead of the\n"
        "                        metadata\n"
        "      --playlist-key K  metadata key of the playlists [playlists]\n"
        "  -j, --json            one JSON object: hr10, mpr, playlists, skipped,\n"
        "                        items, hits, queries, negatives, shuffle, seed\n"
        "  -q, --quiet           no warnings\n"
        "  -v, --verbose         more detail on stderr\n"
        "  -h, --help            this help\n"
        "\n"
        "Playlists are processed in byte order of their ids; playlist number p (from\n"
        "0 in that order) draws from its own generator, split from the seed. Playlists\n"
        "with at most Q tracks (in the stream) are skipped and counted.\n"
        "\n"
        "Exit status: 0 ok; 1 bad input (not one vector per track, vectors of\n"
        "different lengths, NaN values, every vector zero, fewer tracks outside a\n"
        "playlist than negatives, no playlist longer than Q, an unreadable playlist\n"
        "file) or a write error; 2 usage. Tracks with an all-zero vector (no cosine)\n"
        "score 0 against every query, with a warning.\n");
    exit(code);
}

/* playlist ids -> index, open addressing */
struct idmap {
    char **id;
    int n, cap;
    int *slot;
    int n_slot;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int idmap_get(struct idmap *m, const char *id)
{
    if (2 * (m->n + 1) > m->n_slot) {
        int ns = m->n_slot ? 2 * m->n_slot : 1024;
        int *s = malloc(sizeof(int) * (size_t)ns);
        if (!s)
            cli_die(CLI_EXIT_DATA, "out of memory");
        for (int i = 0; i < ns; i++)
            s[i] = -1;
        for (int k = 0; k < m->n; k++) {
            uint64_t i = hash_str(m->id[k]) & (uint64_t)(ns - 1);
            while (s[i] >= 0)
                i = (i + 1) & (uint64_t)(ns - 1);
            s[i] = k;
        }
        free(m->slot);
        m->slot = s;
        m->n_slot = ns;
    }
    uint64_t i = hash_str(id) & (uint64_t)(m->n_slot - 1);
    for (; m->slot[i] >= 0; i = (i + 1) & (uint64_t)(m->n_slot - 1))
        if (!strcmp(m->id[m->slot[i]], id))
            return m->slot[i];
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        if (!(m->id = realloc(m->id, sizeof(char *) * (size_t)m->cap)))
            cli_die(CLI_EXIT_DATA, "out of memory");
    }
    if (!(m->id[m->n] = strdup(id)))
        cli_die(CLI_EXIT_DATA, "out of memory");
    m->slot[i] = m->n;
    return m->n++;
}

/* (playlist, row) pairs */
struct pair {
    int pl, row;
};

static const struct idmap *g_map;
static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->pl != y->pl) {
        int c = strcmp(g_map->id[x->pl], g_map->id[y->pl]);
        if (c)
            return c;
    }
    return (x->row > y->row) - (x->row < y->row);
}

/* the playlists column of every track in a TSV file: returns an (n) array of
 * strings (NULL: track not in the file) */
static char **read_playlist_file(const char *path, const struct cmr_vectors *vs, int *missing)
{
    FILE *f = fopen(path, "r");
    if (!f)
        cli_die(CLI_EXIT_DATA, "%s: %s", path, strerror(errno));
    char **col = calloc((size_t)vs->n ? (size_t)vs->n : 1, sizeof *col);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int c_track = -1, c_pl = -1, n_cols = 0;
    *missing = 0;
    if (!col)
        cli_die(CLI_EXIT_DATA, "out of memory");
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len == 0 && lineno > 1)
            continue;
        char *fields[256];
        int nf = 0;
        for (char *p = line;;) {
            if (nf == 256)
                cli_die(CLI_EXIT_DATA, "%s:%ld: more than 256 columns", path, lineno);
            fields[nf++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = 0;
            p = tab + 1;
        }
        if (lineno == 1) {
            n_cols = nf;
            for (int i = 0; i < nf; i++) {
                if (!strcmp(fields[i], "track"))
                    c_track = i;
                else if (!strcmp(fields[i], "playlists"))
                    c_pl = i;
            }
            if (c_track < 0 || c_pl < 0)
                cli_die(CLI_EXIT_DATA, "%s:1: the header needs columns 'track' and 'playlists'", path);
            continue;
        }
        if (nf != n_cols)
            cli_die(CLI_EXIT_DATA, "%s:%ld: %d fields, the header has %d", path, lineno, nf, n_cols);
        int r = cmr_vectors_find(vs, fields[c_track]);
        if (r < 0) {
            (*missing)++;
            continue;
        }
        const char *v = fields[c_pl];
        if (col[r]) { /* the track again: merge its playlists */
            char *m = malloc(strlen(col[r]) + strlen(v) + 2);
            if (!m)
                cli_die(CLI_EXIT_DATA, "out of memory");
            sprintf(m, "%s,%s", col[r], v);
            free(col[r]);
            col[r] = m;
        } else if (!(col[r] = strdup(v))) {
            cli_die(CLI_EXIT_DATA, "out of memory");
        }
    }
    if (ferror(f))
        cli_die(CLI_EXIT_DATA, "%s: read error", path);
    if (lineno == 0)
        cli_die(CLI_EXIT_DATA, "%s: empty file, no header line", path);
    free(line);
    fclose(f);
    return col;
}

/* the command line */
struct opts {
    struct cmr_knn_cfg cfg;
    const char *input, *pl_file, *pl_key;
    int json;
};

static void parse_options(int argc, char **argv, struct opts *o)
{
    static const struct option opts[] = {
        {"queries", required_argument, NULL, 'Q'},
        {"negatives", required_argument, NULL, 'N'},
        {"seed", required_argument, NULL, 's'},
        {"playlists", required_argument, NULL, 'p'},
        {"playlist-key", required_argument, NULL, 'K'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct cmr_knn_cfg *cfg = &o->cfg;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":Q:N:s:p:jqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'Q': cfg->queries = (int)cli_long("--queries", optarg, 1, 1000); break;
        case 'N':
            if (!strcmp(optarg, "all"))
                cfg->negatives = -1;
            else {
                char *end;
                errno = 0;
                long v = strtol(optarg, &end, 10);
                if (end == optarg || *end || errno || v < 1 || v > 10000000)
                    cli_usage_error("--negatives takes an integer in [1, 10000000] or 'all', got '%s'",
                                    optarg);
                cfg->negatives = (int)v;
            }
            break;
        case 's':
            cfg->seed = cli_seed("--seed", optarg);
            cfg->shuffle = 1;
            break;
        case 'p':
            o->pl_file = cli_nonempty("--playlists", "a file", optarg);
            break;
        case 'K':
            o->pl_key = cli_nonempty("--playlist-key", "a metadata key", optarg);
            break;
        case 'j': o->json = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    o->input = cli_one_input(argc, argv);
}

/* (playlist, row) pairs, rows in stream order, sorted by playlist; the
 * playlists of row i are col[i] (--playlists) or its metadata */
static struct pair *collect_pairs(const struct opts *o, const struct cmr_vectors *vs, char **col,
                                  struct idmap *map, size_t *n_out)
{
    struct pair *pairs = NULL;
    size_t n_pairs = 0, cap_pairs = 0;
    for (int i = 0; i < vs->n; i++) {
        const char *v = col ? col[i] : cmr_vectors_meta(vs, i, o->pl_key);
        if (!v || !*v)
            continue;
        char *copy = strdup(v), *save = NULL;
        if (!copy)
            cli_die(CLI_EXIT_DATA, "out of memory");
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n_pairs == cap_pairs) {
                cap_pairs = cap_pairs ? 2 * cap_pairs : 1024;
                if (!(pairs = realloc(pairs, sizeof *pairs * cap_pairs)))
                    cli_die(CLI_EXIT_DATA, "out of memory");
            }
            pairs[n_pairs].pl = idmap_get(map, t);
            pairs[n_pairs].row = i;
            n_pairs++;
        }
        free(copy);
    }
    if (map->n == 0)
        cli_die(CLI_EXIT_DATA, "no playlists: no track has '%s' %s", o->pl_file ? "playlists" : o->pl_key,
                o->pl_file ? "in the playlist file" : "metadata");
    g_map = map;
    qsort(pairs, n_pairs, sizeof *pairs, cmp_pair);
    *n_out = n_pairs;
    return pairs;
}

/* static: still reachable (not a leak) when an error exits */
static int *start, *members;

/* the playlists as start[0 .. np] into members; returns np */
static int group_playlists(const struct pair *pairs, size_t n_pairs, const struct idmap *map)
{
    start = malloc(sizeof(int) * (size_t)(map->n + 1));
    members = malloc(sizeof(int) * (n_pairs + 1));
    if (!start || !members)
        cli_die(CLI_EXIT_DATA, "out of memory");
    int np = 0;
    size_t k = 0;
    for (size_t i = 0; i < n_pairs; i++) {
        if (i == 0 || pairs[i].pl != pairs[i - 1].pl)
            start[np++] = (int)k;
        else if (pairs[i].row == pairs[i - 1].row)
            continue; /* a track listed twice in one playlist counts once */
        members[k++] = pairs[i].row;
    }
    start[np] = (int)k;
    return np;
}

static void print_result(const struct opts *o, const struct cmr_knn_result *res, const struct cmr_vectors *vs)
{
    const struct cmr_knn_cfg *cfg = &o->cfg;
    if (o->json) {
        printf("{\"hr10\":%.10g,\"mpr\":%.10g,\"playlists\":%lld,\"skipped\":%lld,\"items\":%lld,"
               "\"hits\":%lld,\"queries\":%d,\"negatives\":",
               res->hr, res->mpr, (long long)res->playlists, (long long)res->skipped, (long long)res->items,
               (long long)res->hits, cfg->queries);
        if (cfg->negatives < 0)
            printf("\"all\"");
        else
            printf("%d", cfg->negatives);
        printf(",\"shuffle\":%s,\"seed\":%llu}\n", cfg->shuffle ? "true" : "false",
               (unsigned long long)cfg->seed);
    } else {
        printf("cmr-knn: %d tracks, %d features; %lld playlists evaluated, %lld skipped (<= %d tracks)\n",
               vs->n, vs->d, (long long)res->playlists, (long long)res->skipped, cfg->queries);
        printf("HR@10 %.4f   MPR %.4f   (%lld items, %lld hits; %d queries, ", res->hr, res->mpr,
               (long long)res->items, (long long)res->hits, cfg->queries);
        if (cfg->negatives < 0)
            printf("all outside tracks as negatives");
        else
            printf("%d negatives, seed %llu", cfg->negatives, (unsigned long long)cfg->seed);
        printf("%s)\n", cfg->shuffle ? ", shuffled queries" : "");
    }
}

int main(int argc, char **argv)
{
    struct opts o = {.pl_key = "playlists"};
    cli_init("cmr-knn");
    o.cfg = cmr_knn_cfg_default();
    parse_options(argc, argv, &o);

    /* set up: the vectors and their playlists */
    struct cmr_reader *rd = cli_open_reader(o.input);
    struct cmr_frame hdr;
    cmr_frame_init(&hdr);
    cli_read_header(rd, &hdr);
    struct cmr_vectors vs;
    struct cmr_error err = {0};
    int rc;
    cli_read_vectors(rd, &vs);
    char **col = NULL;
    if (o.pl_file) {
        int missing = 0;
        col = read_playlist_file(o.pl_file, &vs, &missing);
        if (missing)
            cli_warn("%s: %d track%s not in the input: left out of the playlists", o.pl_file, missing,
                     missing == 1 ? "" : "s");
    }
    struct idmap map = {0};
    size_t n_pairs;
    struct pair *pairs = collect_pairs(&o, &vs, col, &map, &n_pairs);
    int np = group_playlists(pairs, n_pairs, &map);

    /* run */
    struct cmr_knn_result res;
    rc = cmr_knn_eval(&o.cfg, vs.X, vs.n, vs.d, start, members, np, &res, &err);
    if (rc != CMR_OK) {
        /* name the playlist rather than its number: "knn: playlist 7: ..." */
        const char *p = strstr(err.msg, "playlist ");
        int idx, used = 0;
        if (p && sscanf(p, "playlist %d%n", &idx, &used) == 1 && idx >= 0 && idx < np)
            cli_die(CLI_EXIT_DATA, "%.*splaylist \"%s\"%s", (int)(p - err.msg), err.msg,
                    map.id[pairs[start[idx]].pl], p + used);
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    }
    if (res.zero_vectors)
        cli_warn("warning: %lld of %d tracks have an all-zero vector, which has no cosine: they score 0 "
                 "against every query", (long long)res.zero_vectors, vs.n);
    if (res.skipped)
        cli_info("%lld playlist%s with at most %d tracks skipped", (long long)res.skipped,
                 res.skipped == 1 ? "" : "s", o.cfg.queries);
    print_result(&o, &res, &vs);
    for (int i = 0; col && i < vs.n; i++)
        free(col[i]);
    free(col);
    for (int i = 0; i < map.n; i++)
        free(map.id[i]);
    free(map.id);
    free(map.slot);
    free(pairs);
    free(start);
    free(members);
    cmr_vectors_free(&vs);
    cmr_frame_free(&hdr);
    cmr_reader_free(rd);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
