/* cmr: contrastive music representations. Umbrella header for libcmr. */
#ifndef CMR_H
#define CMR_H

#include "err.h"
#include "frame.h"
#include "util/rng.h"

#endif
