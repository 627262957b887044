/* cmr_sgemm: the one GEMM wrapper, over cblas_sgemm row-major (see nn.h). */
#include <cblas.h>

#include "err.h"
#include "nn/nn.h"

void cmr_sgemm(int transa, int transb, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {   /* BLAS leaves C untouched only for beta == 1; do what it means */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
                transb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc);
}

void cmr_sgemm_naive(int transa, int transb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = transa ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
    }
}

/* OpenBLAS's cblas.h includes openblas_config.h, which defines OPENBLAS_VERSION */
#ifdef OPENBLAS_VERSION
int cmr_nn_set_threads(int n)
{
    if (n < 1)
        return CMR_EINVAL;
    openblas_set_num_threads(n);
    return CMR_OK;
}

int cmr_nn_get_threads(void) { return openblas_get_num_threads(); }
#else
int cmr_nn_set_threads(int n) { return n < 1 ? CMR_EINVAL : CMR_EUNSUPPORTED; }
int cmr_nn_get_threads(void) { return 1; }
#endif
