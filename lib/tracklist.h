/* Track lists: the TSV files cmr-decode --list reads.
 *
 *   path<TAB>track<TAB>split<TAB>label
 *   000/000002.mp3<TAB>2<TAB>training<TAB>Hip-Hop
 *
 * - The first line is the header: column names, unique and non-empty.
 *   A `path` column is required; `track` is optional (the track id; default:
 *   the path exactly as written in the list). Every other column is metadata
 *   (name -> value, strings) carried by every frame of the track.
 * - Plain TSV (IANA text/tab-separated-values): fields are separated by one
 *   TAB, there is no quoting, so a field cannot hold a TAB or a newline.
 *   A trailing CR (CRLF files) is removed. Empty lines are skipped. Every other
 *   line must have exactly as many fields as the header.
 * - path and track values must be non-empty; metadata values may be empty.
 * - Column names, track ids and metadata values go into frames, so they must
 *   be valid UTF-8 (docs/frames.md); a path may hold any bytes when a `track`
 *   column names the track (without one the path is the track id).
 * - Track ids must be unique.
 * - A relative path is resolved against the directory of the list file
 *   (against the working directory when the list is read from "-").
 * The whole list is read and checked before anything else happens.
 */
#ifndef CMR_TRACKLIST_H
#define CMR_TRACKLIST_H

#include <stddef.h>

#include "err.h"
#include "frame.h"

#define CMR_TRACKLIST_MAX_LINE ((size_t)1 << 20)   /* bytes per line */
#define CMR_TRACKLIST_MAX_COLUMNS 256

struct cmr_track_entry {
    char *path;            /* resolved path to open */
    char *track;           /* track id */
    char **values;         /* metadata values, one per cmr_tracklist.meta_keys */
    long line;             /* line number in the list, from 1 */
};

struct cmr_tracklist {
    struct cmr_track_entry *entries;
    size_t n, cap;
    char **meta_keys;      /* metadata column names, in header order */
    int n_meta;
};

void cmr_tracklist_init(struct cmr_tracklist *tl);

/* Reads the list at path ("-" = stdin). On error tl is left empty and err
 * says "LIST:LINE: what" (CMR_EFORMAT; CMR_EIO when the file cannot be read;
 * CMR_ENOMEM). */
int cmr_tracklist_read(struct cmr_tracklist *tl, const char *path, struct cmr_error *err);

/* Same, from memory (tests); base_dir resolves relative paths (NULL: as is). */
int cmr_tracklist_parse(struct cmr_tracklist *tl, const char *buf, size_t len,
                        const char *name, const char *base_dir, struct cmr_error *err);

/* Appends one entry (copies path and track; no metadata values, or the
 * list's columns all set to ""). For lists built from command-line files.
 * CMR_EFORMAT when track is not valid UTF-8. */
int cmr_tracklist_add(struct cmr_tracklist *tl, const char *path, const char *track,
                      struct cmr_error *err);

/* CMR_EFORMAT "NAME: duplicate track id 'X' (lines A and B)" when two entries
 * share a track id; name is the list's name in the message. */
int cmr_tracklist_check_unique(const struct cmr_tracklist *tl, const char *name,
                               struct cmr_error *err);

/* Adds entry i's metadata columns to fr's metadata (cmr_frame_meta_set). */
int cmr_tracklist_set_meta(const struct cmr_tracklist *tl, size_t i, struct cmr_frame *fr);

void cmr_tracklist_free(struct cmr_tracklist *tl);

#endif
