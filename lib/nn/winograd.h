/* Internal: Winograd F(4x4, 5x5) for conv2d with a 5x5 kernel, stride 1 and
 * padding 2 (output size = input size). Used by conv2d.c; see winograd.c. */
#ifndef CMR_NN_WINOGRAD_H
#define CMR_NN_WINOGRAD_H

#include <stddef.h>

#define CMR_WINO_CHUNK 192  /* tiles (4x4 outputs) per GEMM batch, at least */

/* 4x4 output tiles of a batch: B * ceil(H/4) * ceil(W/4) */
size_t cmr_wino_tiles(int B, int H, int W);
/* floats of scratch for cmr_wino_forward and cmr_wino_backward */
size_t cmr_wino_scratch_floats(int C, int OC, int B, int H, int W);
/* out (B,OC,H,W) = conv(inp (B,C,H,W), weight (OC,C,5,5)) + bias (or NULL) */
void cmr_wino_forward(float *out, float *scratch, const float *inp, const float *weight,
                      const float *bias, int B, int C, int OC, int H, int W);
/* dinp (B,C,H,W) += ..., dweight (OC,C,5,5) += ...; either may be NULL (no bias here) */
void cmr_wino_backward(float *dinp, float *dweight, float *scratch, const float *dout,
                       const float *inp, const float *weight, int B, int C, int OC, int H, int W);

#endif
