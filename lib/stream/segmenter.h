/* Cutting a stream of feature rows (mel or MFCC frames, F values each) into
 * fixed-length segments, or runs of N segments: the one segmentation of cmr,
 * used by cmr-segment, cmrencode and the embedding API (cmr-embed.h).
 *
 * A unit (a segment, or with context N a run of N segments) covers
 *   L = (N - 1) * hop + frames
 * rows, and units start every H rows (H = hop, or run_hop * hop with
 * context). Rows arrive in chunks of any size; only the rows a pending unit
 * still needs are kept, so memory is bounded by L plus the largest chunk.
 *
 *   struct cmr_segmenter_cfg cfg;
 *   cfg = cmr_segmenter_cfg_default();          // 188 rows, back to back
 *   cfg.hop = 94;
 *   struct cmr_segmenter *s = cmr_segmenter_new(&cfg, &err);
 *   for each chunk of a run:
 *       cmr_segmenter_push(s, rows, n, F, offset, tags, &err);
 *       while (cmr_segmenter_ready(s)) cmr_segmenter_next(s, dst, &seg);
 *   at the end of the run (end of track, discontinuity):
 *       cmr_segmenter_drain(s);               // with pad: a last, partial unit
 *       while (cmr_segmenter_ready(s)) cmr_segmenter_next(s, dst, &seg);
 *   cmr_segmenter_free(s);
 *
 * A run is a stretch of contiguous rows: it opens with the first push after
 * new, drain or reset (its offset becomes the first row) and ends with
 * drain. Without pad the rows after the last complete unit are dropped; with
 * pad one last unit starting at the next start, zero-filled past the run's
 * end, comes out at drain (seg.valid says how many rows are real).
 * Tags (a frame's metadata and info: frame.h) may ride along with each
 * chunk; a unit carries those of the chunk that holds its first row.
 * The output does not depend on how the rows were chunked.
 * One object is not thread-safe; distinct objects are independent.
 *
 * Example: tests/unit/test-segmenter.c
 */
#ifndef CMR_STREAM_SEGMENTER_H
#define CMR_STREAM_SEGMENTER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "frame.h"

#define CMR_SEGMENTER_FRAMES 188 /* rows per segment: 3 s of mel frames at hop 256, 16 kHz */

struct cmr_segmenter_cfg {
    long frames;   /* rows per segment, >= 1 (CMR_SEGMENTER_FRAMES) */
    long hop;      /* rows from one segment's start to the next, >= 1; 0: = frames (0) */
    long context;  /* 0: units are segments; N >= 1: runs of N segments (0) */
    long run_hop;  /* with context: segments from one run's start to the next; 0: = context (0) */
    int pad;       /* zero-pad a last, partial unit at drain instead of dropping it (0) */
};

/* one unit that cmr_segmenter_next() wrote */
struct cmr_segment {
    int64_t start;                 /* row of its first row (the run's offsets) */
    int64_t valid;                 /* rows of it that are real: cmr_segmenter_unit_rows(), or fewer when padded */
    int64_t index;                 /* units of this run before it */
    const struct cmr_frame *tags;  /* tags of the chunk holding row start, or NULL; valid until the next push or reset */
};

struct cmr_segmenter_cfg cmr_segmenter_cfg_default(void);

/* NULL with err filled: CMR_EINVAL for a bad configuration ("segmenter:
 * hop should be >= 1, got 0"), CMR_ENOMEM */
struct cmr_segmenter *cmr_segmenter_new(const struct cmr_segmenter_cfg *cfg, struct cmr_error *err);
/* tolerates NULL */
void cmr_segmenter_free(struct cmr_segmenter *s);

/* Appends n rows of width floats each (row-major), the first at row offset.
 * The first push of a run opens it at offset. Every later chunk must start
 * where the previous ended and have the run's width; else CMR_EINVAL with
 * err "starts at row X, expected Y (gaps and overlaps cannot be segmented)"
 * or "has W features, earlier frames V", and nothing is taken. tags may be
 * NULL; they are copied. CMR_ENOMEM when out of memory. */
int cmr_segmenter_push(struct cmr_segmenter *s, const float *rows, int64_t n, int64_t width,
                       int64_t offset, const struct cmr_frame *tags, struct cmr_error *err);
/* Ends the run: with pad, a last partial unit becomes ready. Then only
 * ready/next, units and reset are meaningful; the next push opens a new run. */
void cmr_segmenter_drain(struct cmr_segmenter *s);
/* Changes cfg.pad; it applies at the next drain. */
void cmr_segmenter_set_pad(struct cmr_segmenter *s, int pad);
/* Forgets the run and its rows (a flush). */
void cmr_segmenter_reset(struct cmr_segmenter *s);

/* units that cmr_segmenter_next() would write now */
int64_t cmr_segmenter_ready(const struct cmr_segmenter *s);
/* Writes the next ready unit to dst (cmr_segmenter_unit_size() floats:
 * [frames, F], or [context, frames, F]) and fills seg; 1, or 0 when none is ready. */
int cmr_segmenter_next(struct cmr_segmenter *s, float *dst, struct cmr_segment *seg);

/* the row the next push must start at, or -1 when no run is open */
int64_t cmr_segmenter_next_row(const struct cmr_segmenter *s);
/* units written in the current (or just drained) run */
int64_t cmr_segmenter_units(const struct cmr_segmenter *s);
/* rows one unit covers: (N - 1) * hop + frames */
int64_t cmr_segmenter_unit_rows(const struct cmr_segmenter *s);
/* floats in one unit: segments x frames x width (width of the current run, 0 before any) */
size_t cmr_segmenter_unit_size(const struct cmr_segmenter *s);
/* the configuration in use, defaults resolved (hop, run_hop filled in) */
const struct cmr_segmenter_cfg *cmr_segmenter_cfg(const struct cmr_segmenter *s);

#endif
