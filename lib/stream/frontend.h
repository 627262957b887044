/* What every face of the log-mel front end (cmr-mel, cmr-mfcc, cmrmel, the
 * embedding API) says the same way: the parameters it records in the stream
 * header's provenance, and which stats files (dsp/stats.h) it accepts.
 */
#ifndef CMR_STREAM_FRONTEND_H
#define CMR_STREAM_FRONTEND_H

#include "dsp/mel.h"
#include "dsp/stats.h"
#include "err.h"

/* Calls put(ctx, key, value) for each parameter a mel front end records in
 * its stage of the header, in this order: sample_rate n_fft hop window pad
 * n_mels f_min f_max power scale norm log, then, when norm_path is not NULL
 * (values standardised with a stats file), standardize ("mean=M std=S", 17
 * digits) and stats_file. cmr-mfcc adds its own (n_mfcc, dct) after these.
 * Returns 0, or the first nonzero value put returned (and stops there). */
int cmr_frontend_params(const struct cmr_mel_cfg *cfg, const char *norm_path, double mean, double std,
                        int (*put)(void *ctx, const char *key, const char *val), void *ctx);

/* Reads a stats file (cmr_stats_read) and checks it was made for this front
 * end: CMR_EKIND when it holds statistics of another kind of frames ("PATH
 * holds statistics of \"mfcc\" frames, not \"mel\""), CMR_EINVAL when
 * config is not NULL and differs from the file's ("PATH was computed for a
 * different front end (FILE'S); this one is (CONFIG)"). A file without kind
 * or config (written by hand) passes those checks. Errors of
 * cmr_stats_read pass through. */
int cmr_frontend_stats_load(const char *path, const char *kind, const char *config, struct cmr_stats_file *out,
                            struct cmr_error *err);

#endif
