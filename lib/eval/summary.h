/* Per-track summary: mean and standard deviation over a track's frames.
 *
 * PAPER.md §7: every track becomes one vector, the mean and the standard
 * deviation of its segment embeddings (or of the rows of its MFCC / GRU output
 * frames), concatenated: dim D -> 2D, [mean_0..mean_{D-1}, std_0..std_{D-1}].
 * The standard deviation is the population one (ddof = 0), as numpy.std's
 * default: sqrt(sum (x - mean)^2 / n). One row gives std 0.
 *
 * Rows are accumulated in double with Welford's update, so a long track (tens
 * of thousands of MFCC rows) loses no precision and needs O(D) memory.
 * Pure computation: no I/O, no allocation after cmr_summary_new(). Not
 * thread-safe per object.
 */
#ifndef CMR_EVAL_SUMMARY_H
#define CMR_EVAL_SUMMARY_H

#include <stdint.h>

#include "err.h"

struct cmr_summary;

/* an accumulator for rows of dim floats (dim in [1, 1<<24]); NULL on a bad dim
 * (err filled) or out of memory */
struct cmr_summary *cmr_summary_new(int dim, struct cmr_error *err);
void cmr_summary_free(struct cmr_summary *s);
/* forgets every row (next track) */
void cmr_summary_reset(struct cmr_summary *s);
/* rows accumulated since the last reset */
int64_t cmr_summary_count(const struct cmr_summary *s);
/* adds n_rows rows of dim floats (row-major). CMR_ENAN (nothing added) when a
 * value is NaN or infinite. */
int cmr_summary_add(struct cmr_summary *s, const float *rows, int64_t n_rows,
                    struct cmr_error *err);
/* out (2*dim) = [mean, std]; CMR_ESTATE when no row was added */
int cmr_summary_get(const struct cmr_summary *s, float *out, struct cmr_error *err);

#endif
