/* A catalogue index: one vector per track, searchable for the nearest tracks,
 * on FAISS (lib/index/faiss_shim.h), with each track's id and metadata kept
 * beside the vectors. docs/index.md describes the program (cmr-index) and the
 * file format.
 *
 * Types (FAISS factory strings):
 *   flat   "Flat": exact search. With the cosine metric, results are
 *          re-scored in double exactly as cmr-knn scores (lib/eval/knn.h,
 *          cmr_knn_cosine) and ranked by that score, ties by catalogue
 *          position (the order tracks were added); a candidate set is widened
 *          until the float search provably holds the exact top k.
 *   hnsw   "HNSW<M>" or "HNSW<M>,SQ8": graph search; efSearch at query time.
 *   ivfpq  "IVF<nlist>,PQ<m>np" (no polysemous training): inverted lists over product-quantised codes
 *          (m bytes per vector); trained by k-means on the vectors of the
 *          build; nprobe lists visited at query time. With refine = R > 0,
 *          "IVF<nlist>,PQ<m>np,Refine(SQ8)": the PQ search's R x k best are
 *          re-ranked by 8-bit scalar codes of the vectors (d more bytes per
 *          vector; FAISS's IndexRefine), which lifts the recall that the
 *          PQ codes' distances cap.
 * Metrics: cosine (vectors scaled to unit length; scores are cosines, larger
 * is nearer; in a flat index an all-zero vector scores 0 against everything,
 * as in cmr-knn, the approximate types refuse it) or l2 (scores are squared Euclidean distances, smaller is
 * nearer). Approximate types report FAISS's estimates.
 *
 * Errors: CMR_EINVAL (bad configuration, a dimension or kind mismatch, k out
 * of range, a track id twice, too few vectors to train), CMR_ENAN (a NaN or
 * infinite value), CMR_EFORMAT (a file that is not an index, truncated or
 * corrupt: bad magic, CRC-32 mismatch, inconsistent sizes), CMR_EVERSION,
 * CMR_EIO, CMR_ENOMEM; err says which. Nothing here prints or exits.
 * Not thread-safe per object. */
#ifndef CMR_INDEX_INDEX_H
#define CMR_INDEX_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "frame.h"

#define CMR_INDEX_MAGIC "CMRI"
/* version 2 added refine (header bytes 104-107); version 1 files are read */
#define CMR_INDEX_VERSION 2
/* the largest vector length, k, and catalogue an index takes */
#define CMR_INDEX_MAX_DIM 65536
#define CMR_INDEX_MAX_K 4000

enum cmr_index_type { CMR_INDEX_FLAT = 0, CMR_INDEX_HNSW = 1, CMR_INDEX_IVFPQ = 2 };
enum cmr_index_metric { CMR_METRIC_COSINE = 0, CMR_METRIC_L2 = 1 };

struct cmr_index_cfg {
    int type;            /* enum cmr_index_type (flat) */
    int metric;          /* enum cmr_index_metric (cosine) */
    int hnsw_m;          /* HNSW links per node (32) */
    int ef_construction; /* HNSW build beam (80) */
    int ef_search;       /* HNSW query beam (128) */
    int sq8;             /* HNSW: vectors stored as 8-bit scalars (1), else float */
    int nlist;           /* IVF lists; 0: 4 sqrt(n) rounded to a power of two, in [16, 65536] */
    int pq_m;            /* PQ bytes per vector; 0: d/8 (a divisor of d) */
    int nprobe;          /* IVF lists visited per query (32) */
    int refine;          /* ivfpq: re-rank refine x k candidates by 8-bit codes (0: none) */
};
void cmr_index_cfg_default(struct cmr_index_cfg *cfg);
const char *cmr_index_type_name(int type);
const char *cmr_index_metric_name(int metric);
/* "flat" -> CMR_INDEX_FLAT ...; -1 when unknown */
int cmr_index_type_parse(const char *s);
int cmr_index_metric_parse(const char *s);

struct cmr_index;

/* builds an index of type cfg->type over n vectors X (n, d) with their track
 * ids and metadata (meta[i] has n_meta[i] entries; meta may be NULL), from
 * frames of the given kind ("summary", "embedding"). An ivfpq index is
 * trained on these vectors first. */
struct cmr_index *cmr_index_build(const struct cmr_index_cfg *cfg, int64_t n, int d, const float *X,
                                  const char *const *track, struct cmr_kv *const *meta,
                                  const int *n_meta, const char *kind, struct cmr_error *err);
/* appends n more tracks (ids new to the index) */
int cmr_index_add(struct cmr_index *ix, int64_t n, const float *X, const char *const *track,
                  struct cmr_kv *const *meta, const int *n_meta, struct cmr_error *err);
void cmr_index_free(struct cmr_index *ix);

int64_t cmr_index_size(const struct cmr_index *ix);
int cmr_index_dim(const struct cmr_index *ix);
const char *cmr_index_kind(const struct cmr_index *ix);
const struct cmr_index_cfg *cmr_index_config(const struct cmr_index *ix);
const char *cmr_index_factory(const struct cmr_index *ix); /* the FAISS factory string */
const char *cmr_index_track(const struct cmr_index *ix, int64_t pos);
/* metadata of a track: *n entries */
const struct cmr_kv *cmr_index_meta(const struct cmr_index *ix, int64_t pos, int *n);
/* catalogue position of a track id, -1 when absent */
int64_t cmr_index_find(const struct cmr_index *ix, const char *track);

/* query-time parameters (HNSW efSearch, IVF nprobe, ivfpq's refine factor, which
 * must stay > 0 in an index built with it); <= 0 keeps the stored one */
int cmr_index_set_search(struct cmr_index *ix, int ef_search, int nprobe, int refine, struct cmr_error *err);

/* the k nearest tracks to each of nq queries Q (nq, d): pos (nq, k) catalogue
 * positions, score (nq, k), best first. exclude[i] >= 0 leaves that position
 * out of query i's answer (the query's own track; exclude may be NULL), and
 * then k must be at most size - 1. n_found[i] (may be NULL) is k except for
 * an approximate index that found fewer (the rest is -1 / NaN).
 * CMR_EINVAL when k is not in [1, size] or above CMR_INDEX_MAX_K. */
int cmr_index_search(struct cmr_index *ix, int64_t nq, const float *Q, int k, const int64_t *exclude,
                     int64_t *pos, float *score, int *n_found, struct cmr_error *err);

/* file I/O: write is atomic (lib/util/atomic.h); load reads a file or bytes */
int cmr_index_save(const struct cmr_index *ix, const char *path, struct cmr_error *err);
struct cmr_index *cmr_index_load(const char *path, struct cmr_error *err);
/* name is used in messages */
struct cmr_index *cmr_index_load_mem(const void *buf, size_t len, const char *name, struct cmr_error *err);
/* bytes the FAISS part of the index takes in a file (its serialised size) */
size_t cmr_index_faiss_bytes(const struct cmr_index *ix);

#endif
