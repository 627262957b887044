/* What the model files share and model.h does not publish: lib/model.c
 * (layout, parameters, the optimizer step), lib/model_forward.c (forward,
 * backward, losses), lib/model_file.c (cmr model files) and
 * lib/model_safetensors.c (PyTorch interchange). Not installed; nothing
 * outside lib/model*.c includes it. */
#ifndef CMR_MODEL_INTERNAL_H
#define CMR_MODEL_INTERNAL_H

#include "model.h"

/* the max-pool after each block: {over time, over frequency} (PAPER.md,
 * section 2); a block's output map is its input map divided by these */
extern const int cmr_model_pools[CMR_MODEL_BLOCKS][2];

/* frees m->acts, the forward and backward buffers (model_forward.c); NULL
 * acts is fine */
void cmr_model_acts_free(struct cmr_model *m);

#endif
