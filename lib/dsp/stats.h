/* Global mean and standard deviation of a feature stream, and the small stats
 * file that carries them from the training set to the front end (PAPER.md
 * section 1: "standardize the input across all training data").
 *
 * Accumulation is in double with Chan et al.'s pairwise update (each chunk's
 * mean and sum of squared deviations, then merged), so that billions of
 * values keep full precision. The std is the population one (ddof = 0,
 * numpy.std's default); over millions of values it equals torch.std's to
 * many digits.
 *
 * The stats file is text, one "key value" per line after a magic line:
 *   CMRSTATS 1
 *   kind mel
 *   config sr=16000 n_fft=512 hop=256 n_mels=96 f_min=0 f_max=8000 power=1 scale=slaney norm=slaney log=log10(1+10x)
 *   count 1805952
 *   mean 0.13260000000000000
 *   std 0.18440000000000001
 * Lines starting with '#' and blank lines are ignored, and so are unknown keys
 * (a later version may add some). mean and std are required; kind, config and
 * count are optional, so a file written by hand can carry published constants
 * (the reference code's FMA-small ones: mean 0.1326, std 0.1844). Numbers are
 * written with 17 significant digits and read back exactly. A file is written
 * to a temporary name in the same directory and renamed into place, so a
 * reader never sees half a file (util/atomic.h; a FIFO or a character device
 * is written directly).
 *
 * Example: tests/unit/test-mel.c (test_stats)
 */
#ifndef CMR_DSP_STATS_H
#define CMR_DSP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CMR_STATS_MAGIC "CMRSTATS"
#define CMR_STATS_VERSION 1
#define CMR_STATS_TEXT_MAX 512

struct cmr_stats {
    uint64_t count; /* values seen */
    double mean;    /* their mean */
    double m2;      /* sum of squared deviations from the mean */
};

/* what a stats file holds */
struct cmr_stats_file {
    char kind[64];                     /* "" when absent */
    char config[CMR_STATS_TEXT_MAX];   /* "" when absent */
    uint64_t count;                    /* 0 when absent */
    double mean, std;
};

void cmr_stats_init(struct cmr_stats *s);
/* Adds n values. CMR_ENAN (nothing added) if one of them is not finite. */
int cmr_stats_add(struct cmr_stats *s, const float *x, size_t n);
/* a += b */
void cmr_stats_merge(struct cmr_stats *a, const struct cmr_stats *b);
double cmr_stats_mean(const struct cmr_stats *s);
/* population standard deviation; 0 for fewer than 2 values */
double cmr_stats_std(const struct cmr_stats *s);

/* Writes a stats file atomically (util/atomic.h, CMR_ATOMIC_STREAM). kind and config
 * may be NULL. CMR_EINVAL when s has no values or a zero std, CMR_EIO when
 * the file cannot be written. */
int cmr_stats_write(const char *path, const struct cmr_stats *s, const char *kind,
                    const char *config, struct cmr_error *err);
/* Reads a stats file. CMR_EIO (cannot open), CMR_EFORMAT (bad magic, bad line,
 * missing mean or std, std not > 0), CMR_EVERSION (newer than this build). */
int cmr_stats_read(const char *path, struct cmr_stats_file *out, struct cmr_error *err);

/* x <- (x - mean) / std, in place */
void cmr_stats_apply(float *x, size_t n, double mean, double std);

#endif
