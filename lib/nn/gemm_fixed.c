/* cmr_gemm_fixed: a GEMM whose every output element is computed the same
 * way wherever it sits, for inference (see nn.h).
 *
 * C[i][j] = sum_k A[i][k] * B[j][k], summed in k order from 0 with one
 * fused multiply-add per term (AVX2 + FMA), or one multiply and one add per
 * term (the portable path), into a zero accumulator. No blocking of K, no
 * split accumulators, no dependence on M, N, i or j: a row of A gives the
 * same bits alone or in any batch, at any position.
 *
 * B is packed once (cmr_gemm_fixed_pack) into panels of 16 columns,
 * Bp[j / 16][k][j % 16], zero-padded, so that the kernel reads one 64-byte
 * row of a panel per k. The kernel holds 6 rows x 16 columns of C in twelve
 * AVX registers (6 broadcasts of A and 2 loads of B per 12 FMAs), panel by
 * panel: the panel (K x 16 floats, 32 KB at K = 512) stays in L1 while the
 * rows of A stream through it. */
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CMR_X86 1
#endif

#include "nn/nn.h"

#define PANEL 16
#define ROWS 6
#define KC 256

size_t cmr_gemm_fixed_pack_floats(int N, int K)
{
    return (size_t)(N + PANEL - 1) / PANEL * PANEL * (size_t)K;
}

void cmr_gemm_fixed_pack(float *Bp, const float *B, int ldb, int N, int K)
{
    const int np = (N + PANEL - 1) / PANEL;
    for (int p = 0; p < np; p++) {
        float *dst = Bp + (size_t)p * K * PANEL;
        for (int k = 0; k < K; k++)
            for (int l = 0; l < PANEL; l++) {
                int j = p * PANEL + l;
                dst[(size_t)k * PANEL + l] = j < N ? B[(size_t)j * ldb + k] : 0.0f;
            }
    }
}

/* rows r <= ROWS of A (the others point at row 0 and are not stored), K
 * terms, one panel: c (r, ncol) of C. load: the sums go on from c's values
 * (the next block of K: the same chain of operations as in one pass) */
typedef void (*panel_fn)(int r, int K, const float *const *a, const float *bp, float *c, int ldc,
                         int ncol, int load);

static void load_rows(float acc[ROWS][PANEL], const float *c, int ldc, int r, int ncol, int load)
{
    memset(acc, 0, sizeof(float) * ROWS * PANEL);
    if (load)
        for (int i = 0; i < r; i++)
            memcpy(acc[i], c + (size_t)i * ldc, sizeof(float) * (size_t)ncol);
}

static void store_rows(float *c, int ldc, int r, int ncol, const float acc[ROWS][PANEL])
{
    for (int i = 0; i < r; i++)
        memcpy(c + (size_t)i * ldc, acc[i], sizeof(float) * (size_t)ncol);
}

/* the portable path, for processors without AVX2 and FMA: a multiply and
 * an add in float per term (compiled for such a processor, there is no FMA
 * for the compiler to fuse them into) */
static void panel_generic(int r, int K, const float *const *a, const float *bp, float *c, int ldc,
                          int ncol, int load)
{
    float acc[ROWS][PANEL];
    load_rows(acc, c, ldc, r, ncol, load);
    for (int k = 0; k < K; k++) {
        const float *b = bp + (size_t)k * PANEL;
        for (int i = 0; i < ROWS; i++) {
            const float x = a[i][k];
            for (int l = 0; l < PANEL; l++)
                acc[i][l] = acc[i][l] + x * b[l];
        }
    }
    store_rows(c, ldc, r, ncol, acc);
}

#if CMR_X86
__attribute__((target("avx2,fma"))) static void panel_avx2(int r, int K, const float *const *a,
                                                            const float *bp, float *c, int ldc, int ncol,
                                                            int load)
{
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    float in[ROWS][PANEL];
    load_rows(in, c, ldc, r, ncol, load);
    __m256 c00 = _mm256_loadu_ps(in[0]), c01 = _mm256_loadu_ps(in[0] + 8), c10 = _mm256_loadu_ps(in[1]),
           c11 = _mm256_loadu_ps(in[1] + 8), c20 = _mm256_loadu_ps(in[2]), c21 = _mm256_loadu_ps(in[2] + 8),
           c30 = _mm256_loadu_ps(in[3]), c31 = _mm256_loadu_ps(in[3] + 8), c40 = _mm256_loadu_ps(in[4]),
           c41 = _mm256_loadu_ps(in[4] + 8), c50 = _mm256_loadu_ps(in[5]), c51 = _mm256_loadu_ps(in[5] + 8);
    for (int k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(bp + (size_t)k * PANEL), b1 = _mm256_loadu_ps(bp + (size_t)k * PANEL + 8);
        __m256 x;
        x = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1 + k);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2 + k);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3 + k);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4 + k);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5 + k);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    if (ncol == PANEL) {
        __m256 v[ROWS][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
        for (int i = 0; i < r; i++) {
            _mm256_storeu_ps(c + (size_t)i * ldc, v[i][0]);
            _mm256_storeu_ps(c + (size_t)i * ldc + 8, v[i][1]);
        }
        return;
    }
    float acc[ROWS][PANEL];
    _mm256_storeu_ps(acc[0], c00), _mm256_storeu_ps(acc[0] + 8, c01);
    _mm256_storeu_ps(acc[1], c10), _mm256_storeu_ps(acc[1] + 8, c11);
    _mm256_storeu_ps(acc[2], c20), _mm256_storeu_ps(acc[2] + 8, c21);
    _mm256_storeu_ps(acc[3], c30), _mm256_storeu_ps(acc[3] + 8, c31);
    _mm256_storeu_ps(acc[4], c40), _mm256_storeu_ps(acc[4] + 8, c41);
    _mm256_storeu_ps(acc[5], c50), _mm256_storeu_ps(acc[5] + 8, c51);
    store_rows(c, ldc, r, ncol, acc);
}
#endif

static panel_fn panel_kernel(void)
{
#if CMR_X86
    /* a pure function of the processor: the same kernel for every call */
    static int have = -1;
    if (have < 0)
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (have)
        return panel_avx2;
#endif
    return panel_generic;
}

int cmr_gemm_fixed_fma(void) { return panel_kernel() != panel_generic; }

void cmr_gemm_fixed(int M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    const panel_fn f = panel_kernel();
    /* blocks of KC terms: a block of the panel (16 KB) stays in L1 while the
     * rows of A pass, and the block of A in L2 while the panels pass */
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        for (int j0 = 0; j0 < N; j0 += PANEL) {
            const float *bp = Bp + ((size_t)(j0 / PANEL) * K + k0) * PANEL;
            const int ncol = N - j0 < PANEL ? N - j0 : PANEL;
            for (int i0 = 0; i0 < M; i0 += ROWS) {
                const int r = M - i0 < ROWS ? M - i0 : ROWS;
                const float *a[ROWS];
                for (int i = 0; i < ROWS; i++)
                    a[i] = A + (size_t)(i0 + (i < r ? i : 0)) * lda + k0;
                f(r, kc, a, bp, C + (size_t)i0 * ldc + j0, ldc, ncol, k0 > 0);
            }
        }
    }
}
