/* One vector per track, collected from a frame stream: what cmr-probe and
 * cmr-knn read (typically "summary" frames from cmr-summarize, or "embedding"
 * frames of 3 s clips that need no summary).
 *
 * Every track must have exactly one tensor frame, of rank 1 and the same length
 * D in the whole stream; its metadata is kept. Headers after the first (joined
 * streams) are skipped. A track whose end frame carries an error (a failed
 * upstream track) or that has no tensor frame is left out and counted.
 * Not thread-safe per object.
 */
#ifndef CMR_EVAL_VECTORS_H
#define CMR_EVAL_VECTORS_H

#include "err.h"
#include "frame.h"

struct cmr_vectors {
    int n, d;                 /* tracks, vector length */
    float *X;                 /* (n, d) row-major */
    char **track;             /* (n) track ids */
    struct cmr_kv **meta;     /* (n) metadata of each track */
    int *n_meta;              /* (n) */
    int n_failed;             /* tracks left out: end frame with an error */
    int n_empty;              /* tracks left out: no tensor frame */
    int cap;
    /* private: track id hash set */
    int *slot;
    int n_slot;
};

void cmr_vectors_init(struct cmr_vectors *vs);
/* reads the whole stream (after its first header, which the caller has read).
 * Errors: the reader's, or CMR_EKIND (not one rank-1 tensor per track),
 * CMR_ESHAPE (lengths differ), CMR_EFORMAT (a track id twice), CMR_ENOMEM;
 * err says which track. */
int cmr_vectors_read(struct cmr_vectors *vs, struct cmr_reader *rd, struct cmr_error *err);
/* metadata value of row i, NULL when absent */
const char *cmr_vectors_meta(const struct cmr_vectors *vs, int i, const char *key);
/* row index of a track id, -1 when absent */
int cmr_vectors_find(const struct cmr_vectors *vs, const char *track);
void cmr_vectors_free(struct cmr_vectors *vs);

#endif
