/* Which model file a program uses when it is given none (docs/models.md, "cmr-base"):
 * the one rule for cmr-encode, the cmrencode element and pipelines/radio.sh. */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "model_default.h"

#ifndef CMR_PKGDATADIR
#define CMR_PKGDATADIR "/usr/local/share/cmr"
#endif

const char *cmr_model_installed_path(void)
{
    return CMR_PKGDATADIR "/models/" CMR_MODEL_DEFAULT_NAME;
}

const char *cmr_model_default_path(const char *explicit_path, struct cmr_error *err)
{
    if (explicit_path && *explicit_path)
        return explicit_path;
    const char *env = getenv("CMR_MODEL");
    if (env && *env)
        return env;
    const char *inst = cmr_model_installed_path();
    if (access(inst, R_OK) == 0)
        return inst;
    cmr_error_set(err, CMR_EMODEL,
                  "no model given, CMR_MODEL unset, and %s is not installed "
                  "(give a model file or set CMR_MODEL)",
                  inst);
    return NULL;
}
