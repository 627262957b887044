/* cmr_sgemm against its naive twin: all four transpose cases, leading
 * dimensions larger than the matrix, beta 0 (C's NaNs ignored) and 1, K = 0. */
#include "nn-test.h"

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 11);
    static const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 1, 33}, {64, 65, 66}, {1, 130, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta1 = 0; beta1 < 2; beta1++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
                    float *A = fbuf((size_t)(ta ? K : M) * lda), *B = fbuf((size_t)(tb ? N : K) * ldb);
                    float *C1 = fbuf((size_t)M * ldc), *C2 = fbuf((size_t)M * ldc);
                    fill_normal(&r, A, (size_t)(ta ? K : M) * lda, 1);
                    fill_normal(&r, B, (size_t)(tb ? N : K) * ldb, 1);
                    fill_normal(&r, C1, (size_t)M * ldc, 1);
                    if (!beta1)
                        for (int i = 0; i < M; i++)
                            C1[(size_t)i * ldc] = NAN;
                    memcpy(C2, C1, sizeof(float) * (size_t)M * ldc);
                    float beta = beta1 ? 1.0f : 0.0f;
                    cmr_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C1, ldc);
                    cmr_sgemm_naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C2, ldc);
                    char label[96];
                    snprintf(label, sizeof label, "sgemm M=%d N=%d K=%d ta=%d tb=%d beta=%d", M, N, K,
                             ta, tb, beta1);
                    check_close(label, C1, C2, (size_t)M * ldc, 1e-5, 1e-5);
                    free(A);
                    free(B);
                    free(C1);
                    free(C2);
                }
    float C[6] = {1, 2, 3, 4, 5, 6}, want[6] = {2, 4, 6, 8, 10, 12};
    cmr_sgemm(0, 0, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, C, 3);
    check_close("sgemm K=0 scales C by beta", C, want, 6, 0, 0);
    ok(cmr_nn_set_threads(0) == CMR_EINVAL, "cmr_nn_set_threads(0) is refused");
    ok(cmr_nn_get_threads() >= 1, "cmr_nn_get_threads() = %d", cmr_nn_get_threads());
    return tap_done();
}
