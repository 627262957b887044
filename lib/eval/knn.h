/* ItemKNN-CBF playlist-continuation evaluation (PAPER.md §7).
 *
 * For each playlist (tracks in stream order):
 *  - the first `queries` tracks are the queries (with shuffle, the playlist is
 *    first permuted by a Fisher-Yates shuffle drawn from the playlist's RNG);
 *  - every other track of the playlist is a ground-truth item, ranked among
 *    itself and `negatives` tracks drawn uniformly without replacement from the
 *    tracks outside the playlist (negatives < 0: every track outside it);
 *  - a candidate's score is its mean cosine similarity to the queries,
 *    (1/Q) sum_q <c, q> / (|c| |q|), in double; a zero vector has no cosine:
 *    it counts as 0 with everything (res->zero_vectors counts them), and when
 *    every vector is zero the evaluation is refused (CMR_EINVAL);
 *  - rank = 1 + the number of negatives whose score is >= the item's score
 *    (pessimistic ties: a tie counts against the item);
 *  - HR@k = fraction of items with rank <= k; MPR = mean of (rank - 1) / N
 *    with N the item's number of negatives (0 best, 0.5 random).
 * Both are means over all ground-truth items of all playlists (not means of
 * per-playlist means). Playlists with at most `queries` tracks are skipped.
 *
 * Randomness: base = cmr_rng_seed(seed); playlist p (its position in the
 * arrays given) draws from cmr_rng_split(base, p), first the query shuffle
 * (when asked: for i = m-1 .. 1, j = below(i+1), swap(i, j)), then for each
 * item in playlist order its negatives by a partial Fisher-Yates over the pool
 * of outside tracks (ascending track index at the start of the playlist, kept
 * permuted from one item to the next): for i = 0 .. N-1,
 * j = i + below(pool_size - i), swap(i, j), negative i = pool[i].
 * tests/ref/make_refs_eval.py reproduces this draw for draw.
 * Pure computation: no I/O. Thread-safe (no shared state).
 */
#ifndef CMR_EVAL_KNN_H
#define CMR_EVAL_KNN_H

#include <stdint.h>

#include "err.h"

struct cmr_knn_cfg {
    int queries;     /* query tracks per playlist (3) */
    int negatives;   /* negatives per item (100); < 0: every track outside the playlist */
    int k;           /* cut-off of the hit rate (10) */
    int shuffle;     /* permute each playlist before taking the queries */
    uint64_t seed;
};
struct cmr_knn_cfg cmr_knn_cfg_default(void);

struct cmr_knn_result {
    int64_t playlists;  /* playlists evaluated */
    int64_t skipped;    /* playlists with at most `queries` tracks */
    int64_t items;      /* ground-truth items ranked */
    int64_t hits;       /* items with rank <= k */
    double hr;          /* hits / items */
    double mpr;         /* mean percentile rank */
    int64_t zero_vectors; /* tracks whose vector is all zeros (cosine 0 with everything) */
};

/* The unit rows of emb (n, d) in double, out (n, d): x / sqrt(sum x^2), the
 * sum in double in index order; a zero row stays zero. A score is then the
 * double dot product of two unit rows, summed in index order: cmr-index
 * (lib/index/index.c) re-scores its flat cosine results with this. */
void cmr_knn_normalise(const float *emb, int n, int d, double *out);

/* emb (n, d) row-major, one row per track. Playlist p holds the track indices
 * members[start[p] .. start[p+1]) (distinct, in stream order); start has
 * n_playlists + 1 entries. Errors: CMR_EINVAL (bad sizes or indices, a
 * duplicate member, fewer outside tracks than negatives, no playlist to
 * evaluate, every vector zero), CMR_ENAN (a non-finite embedding value), CMR_ENOMEM. */
int cmr_knn_eval(const struct cmr_knn_cfg *cfg, const float *emb, int n, int d,
                 const int *start, const int *members, int n_playlists,
                 struct cmr_knn_result *res, struct cmr_error *err);

#endif
