/* The model a program uses when it is given none: cmr-base, the pretrained
 * multi-level encoder that `make install` puts in $(pkgdatadir)/models/
 * (docs/models.md, "cmr-base"). One rule for cmr-encode, the cmrencode element
 * and pipelines/radio.sh (which asks cmr-encode --default-model). */
#ifndef CMR_MODEL_DEFAULT_H
#define CMR_MODEL_DEFAULT_H

#include "err.h"

#define CMR_MODEL_DEFAULT_NAME "cmr-base.cmr"

/* where make install puts cmr-base: $(pkgdatadir)/models/cmr-base.cmr */
const char *cmr_model_installed_path(void);

/* The model file to load: explicit_path when it is set and not empty, else the
 * CMR_MODEL environment variable when set and not empty, else the installed
 * cmr-base when it is readable. NULL (err: CMR_EMODEL, saying what was tried)
 * when there is none. The string returned is explicit_path, the environment's
 * or a constant: do not free it. Whether the file is a valid model is for
 * cmr_model_load to say. */
const char *cmr_model_default_path(const char *explicit_path, struct cmr_error *err);

#endif
