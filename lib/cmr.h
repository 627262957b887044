/* cmr: contrastive music representations. Umbrella header for libcmr: the
 * public API (docs/library.md). Compile with `pkg-config --cflags cmr` and
 * `#include <cmr.h>`; link with `pkg-config --libs cmr`. */
#ifndef CMR_H
#define CMR_H

#include "err.h"
#include "cmr-embed.h"
#include "frame.h"
#include "util/rng.h"
#include "dsp/mel.h"
#include "model.h"

#endif
