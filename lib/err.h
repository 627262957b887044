/* cmr error codes and messages.
 *
 * Every lib/ function that can fail returns an int: CMR_OK (0), a positive
 * non-error status (CMR_EOF), or a negative CMR_E* code. cmr_strerror() has one
 * line of text per code. Functions that can say more take an optional
 * struct cmr_error *, filled as "module: what should hold, got what" (aubio).
 * lib/ never prints and never exits: the caller decides.
 */
#ifndef CMR_ERR_H
#define CMR_ERR_H

enum {
    CMR_OK = 0,
    CMR_EOF = 1,            /* clean end of stream at a frame boundary */

    CMR_ENOMEM = -1,        /* out of memory */
    CMR_EIO = -2,           /* read or write failed */
    CMR_EINVAL = -3,        /* invalid argument or option value */
    CMR_ETRUNCATED = -4,    /* stream ends inside a frame or inside a track */
    CMR_EPARSE = -5,        /* bytes are not MessagePack */
    CMR_EROOT = -6,         /* frame is not a map */
    CMR_EKEY = -7,          /* required key missing */
    CMR_ETYPE = -8,         /* key has the wrong MessagePack type */
    CMR_EMAGIC = -9,        /* header magic is not "CMRF" */
    CMR_EVERSION = -10,     /* format version newer than this build */
    CMR_EDTYPE = -11,       /* dtype other than "f32" */
    CMR_ESHAPE = -12,       /* bad shape (rank, negative or zero dims) */
    CMR_ESIZE = -13,        /* shape x dtype does not match the data size */
    CMR_ETOOBIG = -14,      /* declared or buffered size above the hard bound */
    CMR_ENOHEADER = -15,    /* stream does not start with a header frame */
    CMR_EFRAMETYPE = -16,   /* unknown frame type "t" */
    CMR_EKIND = -17,        /* tensor kind not what this stage takes */
    CMR_EORDER = -18,       /* frames out of order (track not ended, end without start) */
    CMR_EAUDIO = -19,       /* audio file cannot be opened or decoded */
    CMR_ENAN = -20,         /* NaN or infinity where a finite number is required */
    CMR_EFORMAT = -21,      /* a file (stats, model, list) is malformed */
    CMR_EUNSUPPORTED = -22, /* valid but not supported by this build */
    CMR_EMODEL = -23,       /* model file or model configuration is invalid */
    CMR_ENUMERIC = -24,     /* numerical failure (diverging loss, singular ...) */
    CMR_ESTATE = -25,       /* call not valid in the object's current state */
    CMR_ELAST = -26
};

struct cmr_error {
    int code;
    char msg[1024];   /* room for two paths or two front-end descriptions */
};

/* One line of text for a code; never NULL. */
const char *cmr_strerror(int code);

/* Fills err (which may be NULL) and returns code, so that callers can write
 * `return cmr_error_set(err, CMR_EINVAL, "mel: n_mels should be > 0, got %d", n);` */
int cmr_error_set(struct cmr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The detailed message if there is one, else cmr_strerror(code). */
const char *cmr_error_text(const struct cmr_error *err, int code);

#endif
