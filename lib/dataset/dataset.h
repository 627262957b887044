/* The readers of the paper's data sets, in the layouts they are distributed
 * in, each turning a data set into the rows of a track list (the TSV that
 * cmr-decode --list reads): path, track, then split, label, tags or
 * playlists as the set has them. cmr-manifest is the command-line face;
 * docs/evaluation.md ("Data sets") describes each layout and rule.
 *
 *   fma    tracks.csv (lib/dataset/fma.c)         path track split label
 *   irmas  IRMAS-TrainingData/ (irmas.c)          path track split label
 *   aotm   playlists JSON + id map (aotm.c)       path track playlists
 *   msd    musicnn's index folder (msd.c)         path track split tags
 *   mtat   annotations_final.csv (mtat.c)         path track split tags
 *
 * Every reader is deterministic: the same files give the same rows. Paths
 * are absolute when the audio root exists. A row whose audio file is not
 * readable is left out (cfg.check), and counted.
 *
 * The caller receives the header, the rows and the messages through a
 * struct cmr_dataset_sink. Nothing here prints or exits; an error (a file
 * missing or malformed: the message names the file and line) is a negative
 * CMR_E* code with err filled. */
#ifndef CMR_DATASET_H
#define CMR_DATASET_H

#include <stdarg.h>
#include <stdint.h>

#include "err.h"

enum cmr_dataset_level {
    CMR_DATASET_INFO, /* one line per left-out track, counts (cmr-manifest -v) */
    CMR_DATASET_WARN  /* something the user should know (cmr-manifest without -q) */
};

struct cmr_dataset_sink {
    /* the header: the column names, tab-separated, no newline */
    int (*header)(void *ctx, const char *columns, struct cmr_error *err);
    /* one row: path, track, then n values (none holds a tab or a newline) */
    int (*row)(void *ctx, const char *path, const char *track, const char *const *values, int n,
               struct cmr_error *err);
    /* a message (printf-style, no newline); may be NULL */
    void (*note)(void *ctx, enum cmr_dataset_level level, const char *fmt, va_list ap);
    void *ctx;
};

struct cmr_dataset_cfg {
    const char *audio;  /* audio root; NULL: the set's default (see each reader) */
    int check;          /* 1: leave out (and count) rows whose audio file is not readable */
    const char *subset; /* fma: small, medium or large (a larger one includes the smaller) */
    uint64_t seed;      /* irmas: split seed */
    int split[3];       /* irmas: training/validation/test percentages */
    long min_tracks;    /* aotm: keep playlists with at least this many tracks with audio */
    const char *name;   /* msd: the index files' suffix (msd; mtt for MagnaTagATune) */
    long top;           /* mtat: the most frequent tags kept */
};

/* check on, fma small, seed 0, split 70/15/15, 4 tracks, msd, top 50 */
struct cmr_dataset_cfg cmr_dataset_cfg_default(void);

/* 0, 1, 2 for fma's small, medium, large; -1 for anything else */
int cmr_dataset_fma_subset(const char *name);

/* FMA fma_metadata/tracks.csv (3 header rows); audio root: CSV/../fma_SUBSET */
int cmr_dataset_fma(const char *tracks_csv, const struct cmr_dataset_cfg *cfg,
                    const struct cmr_dataset_sink *out, struct cmr_error *err);
/* IRMAS training data: root/<class>/NAME.wav (cfg.audio, when set, is the root) */
int cmr_dataset_irmas(const char *root, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                      struct cmr_error *err);
/* AOTM-2011 playlists (JSON) and MAP (id<TAB>path); audio root: MAP's folder */
int cmr_dataset_aotm(const char *json, const char *map, const struct cmr_dataset_cfg *cfg,
                     const struct cmr_dataset_sink *out, struct cmr_error *err);
/* musicnn's MSD index folder (index_NAME.tsv, {train,val,test}_gt_NAME.tsv,
 * output_labels_NAME.txt); audio root: the folder */
int cmr_dataset_msd(const char *dir, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                    struct cmr_error *err);
/* MagnaTagATune annotations_final.csv; audio root: its folder */
int cmr_dataset_mtat(const char *csv, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                     struct cmr_error *err);

#endif
