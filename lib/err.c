#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const messages[] = {
    [0] = "success",
    [-CMR_ENOMEM] = "out of memory",
    [-CMR_EIO] = "input/output error",
    [-CMR_EINVAL] = "invalid argument",
    [-CMR_ETRUNCATED] = "truncated stream",
    [-CMR_EPARSE] = "not a MessagePack frame stream",
    [-CMR_EROOT] = "frame is not a MessagePack map",
    [-CMR_EKEY] = "required key missing in frame",
    [-CMR_ETYPE] = "frame key has the wrong type",
    [-CMR_EMAGIC] = "bad magic: not a cmr frame stream",
    [-CMR_EVERSION] = "frame format version newer than this cmr",
    [-CMR_EDTYPE] = "unsupported dtype",
    [-CMR_ESHAPE] = "invalid tensor shape",
    [-CMR_ESIZE] = "tensor data size does not match its shape",
    [-CMR_ETOOBIG] = "declared size above the hard limit",
    [-CMR_ENOHEADER] = "stream does not start with a header frame",
    [-CMR_EFRAMETYPE] = "unknown frame type",
    [-CMR_EKIND] = "unexpected tensor kind",
    [-CMR_EORDER] = "frames out of order",
    [-CMR_EAUDIO] = "cannot decode audio",
    [-CMR_ENAN] = "NaN or infinite value",
    [-CMR_EFORMAT] = "malformed file",
    [-CMR_EUNSUPPORTED] = "not supported",
    [-CMR_EMODEL] = "invalid model",
    [-CMR_ENUMERIC] = "numerical failure",
    [-CMR_ESTATE] = "invalid state",
};

const char *cmr_strerror(int code)
{
    if (code == CMR_EOF)
        return "end of stream";
    if (code > 0 || code <= CMR_ELAST)
        return "unknown error";
    return messages[-code];
}

int cmr_error_set(struct cmr_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *cmr_error_text(const struct cmr_error *err, int code)
{
    if (err && err->code == code && err->msg[0])
        return err->msg;
    return cmr_strerror(code);
}
