/* bench-index: one row of bench/index's table. Builds one index (lib/index,
 * as cmr-index does) over synthetic clustered vectors, saves it, frees
 * everything, loads it again, and times queries against the loaded index:
 *
 *   bench-index --n N --d D --type flat|hnsw|ivfpq [--nq 200] [--k 10]
 *               [--gt FILE] [--hnsw-m M] [--ef-construction N] [--ef-search N,...]
 *               [--float-storage] [--nlist N] [--pq-m M] [--nprobe N,...] [--refine R,...]
 *               [--dir DIR] [--threads T] [--seed S] [--keep FILE]
 *
 * Data: C = 1000 clusters of intrinsic dimension 16 (see gen() below);
 * queries are fresh draws of the same kind (another stream of the
 * generator). Cosine metric.
 * --keep FILE: the index is kept as FILE; when FILE exists, it is loaded
 * instead of built (build columns 0: to time other query settings of one
 * index, or to profile its queries alone).
 * --gt FILE: the exact top k of every query (written by the flat run when the
 * file does not exist, read by the others to compute recall@k).
 * A list of --ef-search or --nprobe values gives one row per value, over the
 * same index; with --refine (ivfpq re-ranked by 8-bit codes, built with the
 * list's first value), one row per nprobe and refine. Prints one TSV row per value:
 *   d n type params build_s build_cpu_s bytes_per_vector mem_mb peak_mb qps qps_cpu recall@k
 * build_cpu_s and qps_cpu count the process's CPU time instead of the wall
 * clock: on a loaded machine they say what the index costs, the wall clock
 * what the load left of it.
 * mem_mb: resident memory the loaded index takes (RSS after loading minus RSS
 * before); peak_mb: the process's peak RSS (build included, with the raw
 * vectors); bytes_per_vector: the index file's size / n. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index/faiss_shim.h"
#include "index/index.h"
#include "util/rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double rss_mb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static void die(const char *m)
{
    fprintf(stderr, "bench-index: %s\n", m);
    exit(1);
}

/* n vectors of stream `stream`: each from a cluster c (uniform over C):
 * x = mu_c + B_c z + 0.05 e, with z in R^R and e in R^d standard normal,
 * mu_c ~ N(0, 1)^d and B_c (d, R) with N(0, 0.25 / R) entries: clusters of
 * intrinsic dimension R = 16 (as embeddings lie near a low-dimensional
 * manifold), each spread over 0.25 d of squared radius against 2 d between
 * centres */
#define R 16
static float *gen(int64_t n, int d, const float *mu, const float *B, int C, struct cmr_rng *r)
{
    float *X = malloc(sizeof(float) * (size_t)n * d);
    if (!X)
        die("out of memory");
    for (int64_t i = 0; i < n; i++) {
        int c = (int)cmr_rng_below(r, (uint64_t)C);
        float z[R];
        for (int a = 0; a < R; a++)
            z[a] = (float)cmr_rng_normal(r);
        const float *m = mu + (size_t)c * d, *b = B + (size_t)c * d * R;
        float *x = X + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            float s = m[j];
            for (int a = 0; a < R; a++)
                s += b[j * R + a] * z[a];
            x[j] = s + 0.05f * (float)cmr_rng_normal(r);
        }
    }
    return X;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"n", required_argument, NULL, 'n'}, {"d", required_argument, NULL, 'd'},
        {"type", required_argument, NULL, 'T'}, {"nq", required_argument, NULL, 'Q'},
        {"k", required_argument, NULL, 'k'}, {"gt", required_argument, NULL, 'g'},
        {"hnsw-m", required_argument, NULL, 'M'}, {"ef-construction", required_argument, NULL, 'C'},
        {"ef-search", required_argument, NULL, 'E'}, {"float-storage", no_argument, NULL, 'F'},
        {"nlist", required_argument, NULL, 'L'}, {"pq-m", required_argument, NULL, 'P'},
        {"nprobe", required_argument, NULL, 'N'}, {"dir", required_argument, NULL, 'D'},
        {"refine", required_argument, NULL, 'R'}, {"keep", required_argument, NULL, 'K'}, {"threads", required_argument, NULL, 't'}, {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    int64_t n = 100000;
    int d = 128, nq = 200, k = 10, c;
    const char *gt = NULL, *dir = "/tmp", *sweep = NULL, *refines = "0", *keep = NULL;
    uint64_t seed = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': n = atoll(optarg); break;
        case 'd': d = atoi(optarg); break;
        case 'T':
            if ((cfg.type = cmr_index_type_parse(optarg)) < 0)
                die("--type: flat, hnsw or ivfpq");
            break;
        case 'Q': nq = atoi(optarg); break;
        case 'k': k = atoi(optarg); break;
        case 'g': gt = optarg; break;
        case 'M': cfg.hnsw_m = atoi(optarg); break;
        case 'C': cfg.ef_construction = atoi(optarg); break;
        case 'E': cfg.ef_search = atoi(optarg); sweep = optarg; break;
        case 'F': cfg.sq8 = 0; break;
        case 'L': cfg.nlist = atoi(optarg); break;
        case 'P': cfg.pq_m = atoi(optarg); break;
        case 'N': cfg.nprobe = atoi(optarg); sweep = optarg; break;
        case 'R': cfg.refine = atoi(optarg); refines = optarg; break;
        case 'D': dir = optarg; break;
        case 'K': keep = optarg; break;
        case 't': cmr_faiss_threads(atoi(optarg)); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        default: die("usage: see the comment at the top of bench/bench-index.c");
        }
    }
    if (n < 1 || d < 1 || nq < 1 || k < 1 || k > n)
        die("bad sizes");
    double rss0 = rss_mb();
    const int C = 1000;
    struct cmr_rng r;
    cmr_rng_seed(&r, seed);
    float *centres = malloc(sizeof(float) * (size_t)C * d);
    float *basis = malloc(sizeof(float) * (size_t)C * d * R);
    if (!centres || !basis)
        die("out of memory");
    for (int i = 0; i < C * d; i++)
        centres[i] = (float)cmr_rng_normal(&r);
    for (size_t i = 0; i < (size_t)C * d * R; i++)
        basis[i] = (float)(cmr_rng_normal(&r) * 0.5 / 4.0); /* sd sqrt(0.25 / R) */
    struct cmr_rng base, rx, rq;
    cmr_rng_seed(&base, seed);
    cmr_rng_split(&base, 1, &rx);
    cmr_rng_split(&base, 2, &rq);
    float *Q = gen(nq, d, centres, basis, C, &rq);
    /* the catalogue in chunks of 10^6 (the first one trains IVF-PQ), so that
     * 10^7 vectors never sit in memory as floats at once */
    const int64_t chunk = 1000000;
    char **ids = malloc(sizeof(char *) * (size_t)(n < chunk ? n : chunk));
    char *names = malloc((size_t)(n < chunk ? n : chunk) * 24);
    if (!ids || !names)
        die("out of memory");
    struct cmr_error err = {0};
    struct cmr_index *ix = NULL;
    double t_build = 0, c_build = 0;
    int loaded = keep && access(keep, F_OK) == 0;
    for (int64_t i0 = 0; !loaded && i0 < n; i0 += chunk) {
        int64_t m = n - i0 < chunk ? n - i0 : chunk;
        float *X = gen(m, d, centres, basis, C, &rx);
        for (int64_t i = 0; i < m; i++) {
            ids[i] = names + (size_t)i * 24;
            snprintf(ids[i], 24, "%lld", (long long)(i0 + i));
        }
        double t0 = now(), c0 = cpu_now();
        if (!ix)
            ix = cmr_index_build(&cfg, m, d, X, (const char *const *)ids, NULL, NULL, "embedding", &err);
        else if (cmr_index_add(ix, m, X, (const char *const *)ids, NULL, NULL, &err))
            die(err.msg);
        t_build += now() - t0;
        c_build += cpu_now() - c0;
        free(X);
        if (!ix)
            die(err.msg);
    }
    free(basis);
    if (loaded && !(ix = cmr_index_load(keep, &err)))
        die(err.msg);
    if (cmr_index_size(ix) != n || cmr_index_dim(ix) != d)
        die("--keep: the file holds another n or d");
    cfg = *cmr_index_config(ix);
    char params[128];
    if (cfg.type == CMR_INDEX_FLAT)
        snprintf(params, sizeof params, "%s", cmr_index_factory(ix));
    else if (cfg.type == CMR_INDEX_HNSW)
        snprintf(params, sizeof params, "%s,efC=%d,ef=", cmr_index_factory(ix), cfg.ef_construction);
    else
        snprintf(params, sizeof params, "%s,nprobe=", cmr_index_factory(ix));
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-index.%d.cmri", dir, (int)getpid());
    if (keep)
        snprintf(path, sizeof path, "%s", keep);
    if (!loaded && cmr_index_save(ix, path, &err))
        die(err.msg);
    struct stat st;
    stat(path, &st);
    cmr_index_free(ix);
    free(ids);
    free(names);
    double rss1 = rss_mb();
    ix = cmr_index_load(path, &err);
    if (!keep)
        unlink(path);
    if (!ix)
        die(err.msg);
    double mem = rss_mb() - rss1;
    (void)rss0;

    int64_t *pos = malloc(sizeof(int64_t) * (size_t)nq * k);
    float *score = malloc(sizeof(float) * (size_t)nq * k);
    /* one row per query-time value: --ef-search 64,128 or --nprobe 16,64
     * (times --refine 2,8) */
    char *list = strdup(sweep ? sweep : "0"), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      char *rlist = strdup(refines), *rsave = NULL;
      for (char *rtok = strtok_r(rlist, ",", &rsave); rtok; rtok = strtok_r(NULL, ",", &rsave)) {
        int v = atoi(tok), rf = atoi(rtok);
        if (cfg.type == CMR_INDEX_HNSW && cmr_index_set_search(ix, v, 0, 0, &err))
            die(err.msg);
        if (cfg.type == CMR_INDEX_IVFPQ && cmr_index_set_search(ix, 0, v, rf, &err))
            die(err.msg);
        double t0 = now(), c0 = cpu_now();
        if (cmr_index_search(ix, nq, Q, k, NULL, pos, score, NULL, &err))
            die(err.msg);
        double qps = nq / (now() - t0), qps_cpu = nq / (cpu_now() - c0);
        double recall = -1;
        if (gt) {
            FILE *f = fopen(gt, "rb");
            if (!f && cfg.type == CMR_INDEX_FLAT) {
                f = fopen(gt, "wb");
                if (!f || fwrite(pos, sizeof(int64_t), (size_t)nq * k, f) != (size_t)nq * k)
                    die("cannot write the ground truth");
                fclose(f);
                recall = 1;
            } else if (f) {
                int64_t *truth = malloc(sizeof(int64_t) * (size_t)nq * k);
                if (fread(truth, sizeof(int64_t), (size_t)nq * k, f) != (size_t)nq * k)
                    die("the ground truth file is short (other --nq or -k?)");
                fclose(f);
                int64_t hits = 0;
                for (int q = 0; q < nq; q++)
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++)
                            hits += truth[(size_t)q * k + a] == pos[(size_t)q * k + b];
                recall = (double)hits / ((double)nq * k);
                free(truth);
            }
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        const struct cmr_index_cfg *cq = cmr_index_config(ix);
        printf("%d\t%lld\t%s\t%s", d, (long long)n, cmr_index_type_name(cfg.type), params);
        if (cfg.type == CMR_INDEX_HNSW)
            printf("%d", cq->ef_search);
        else if (cfg.type == CMR_INDEX_IVFPQ)
            printf("%d", cq->nprobe);
        if (cq->refine)
            printf(",refine=%d", cq->refine);
        printf("\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.1f\t%.1f\t", t_build, c_build, (double)st.st_size / (double)n,
               mem, ru.ru_maxrss / 1024.0, qps, qps_cpu);
        if (recall >= 0)
            printf("%.4f\n", recall);
        else
            printf("-\n");
        fflush(stdout);
      }
      free(rlist);
    }
    free(list);
    free(pos);
    free(score);
    free(Q);
    free(centres);
    cmr_index_free(ix);
    return 0;
}
