/* Winograd F(4x4, 5x5) convolution for the 5x5, stride 1, padding 2 layers of
 * cmr's encoder (Lavin & Gray, "Fast Algorithms for Convolutional Neural
 * Networks", CVPR 2016). Internal to conv2d.c; see nn.h and docs/nn.md.
 *
 * Each 4x4 block of outputs ("tile") comes from an 8x8 input patch (rows and
 * columns 4t-2 .. 4t+5, zero outside the image):
 *   Y = AT [ (G g G^T) (.) (BT d BT^T) ] AT^T          (.) elementwise, 8x8
 * Summed over input channels, the elementwise product becomes 64 GEMMs, one per
 * position xi of the transformed tile:
 *   M[xi] (tiles, OC) = V[xi] (tiles, C) . U[xi]^T (C, OC)
 * that is 64 multiply-adds per 16 outputs instead of 400 (6.25x fewer), at the
 * price of the transforms and ~1e-6 relative rounding (direct sums: ~1e-7).
 *
 * The backward passes are the exact adjoints of this forward:
 *   dW = G^T [ sum over tiles (A dY A^T) (.) V ] G    (64 GEMMs dM^T . V)
 *   dinp = this forward convolution run on dout with the weights rotated by
 *          180 degrees and transposed (for 5x5 padding 2, exactly dL/dinp).
 *
 * Interpolation points 0, +-1, +-2, +-1/2 and infinity; lib/nn/winograd.py
 * derives the matrices (Cook-Toom, sympy) and checks the identity exactly.
 *
 * Data layout: the images of a group are first repacked into a zero-padded,
 * channel-interleaved copy (C/4, 4*TH+4, 4*TW+4, 4): every 8x8 patch is then a
 * run of contiguous four-channel vectors, and each transform works on four
 * channels at once (one per lane of a v4f) with no bounds checks. V, M and dM
 * keep the channels innermost ((xi, tile, channel)), so their loads and stores
 * are contiguous vectors too, and the GEMMs take them transposed where needed.
 * Images are processed in groups of about CMR_WINO_CHUNK tiles so that the
 * buffers stay bounded and the GEMMs stay wide.
 */
#include <string.h>

#include "nn/nn.h"
#include "nn/vec.h"
#include "nn/winograd.h"

/* weight transform, U = G g G^T (8x8 from 5x5) */
static const float WINO_G[8][5] = {
    {-1, 0, 0, 0, 0},
    {-2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9, -2.0f / 9},
    {-2.0f / 9, 2.0f / 9, -2.0f / 9, 2.0f / 9, -2.0f / 9},
    {1.0f / 90, 1.0f / 45, 2.0f / 45, 4.0f / 45, 8.0f / 45},
    {1.0f / 90, -1.0f / 45, 2.0f / 45, -4.0f / 45, 8.0f / 45},
    {32.0f / 45, 16.0f / 45, 8.0f / 45, 4.0f / 45, 2.0f / 45},
    {32.0f / 45, -16.0f / 45, 8.0f / 45, -4.0f / 45, 2.0f / 45},
    {0, 0, 0, 0, 1},
};

/* G transposed: the adjoint of the weight transform, dW = G^T dU G */
static const float WINO_GT[5][8] = {
    {-1, -2.0f / 9, -2.0f / 9, 1.0f / 90, 1.0f / 90, 32.0f / 45, 32.0f / 45, 0},
    {0, -2.0f / 9, 2.0f / 9, 1.0f / 45, -1.0f / 45, 16.0f / 45, -16.0f / 45, 0},
    {0, -2.0f / 9, -2.0f / 9, 2.0f / 45, 2.0f / 45, 8.0f / 45, 8.0f / 45, 0},
    {0, -2.0f / 9, 2.0f / 9, 4.0f / 45, -4.0f / 45, 4.0f / 45, -4.0f / 45, 0},
    {0, -2.0f / 9, -2.0f / 9, 8.0f / 45, 8.0f / 45, 2.0f / 45, 2.0f / 45, 1},
};

/* The other three transforms, factored by hand from
 *   BT = [-1   0  21/4    0   -21/4    0    1  0]     AT = [1 1  1 1  1   1    1  0]
 *        [ 0   1    1  -17/4  -17/4    1    1  0]          [0 1 -1 2 -2 1/2 -1/2 0]
 *        [ 0  -1    1   17/4  -17/4   -1    1  0]          [0 1  1 4  4 1/4  1/4 0]
 *        [ 0  1/2  1/4  -5/2   -5/4    2    1  0]          [0 1 -1 8 -8 1/8 -1/8 1]
 *        [ 0 -1/2  1/4   5/2   -5/4   -2    1  0]
 *        [ 0   2    4   -5/2    -5    1/2   1  0]     A = AT^T
 *        [ 0  -2    4    5/2    -5   -1/2   1  0]
 *        [ 0  -1    0   21/4     0   -21/4  0  1]
 * (rows in pairs: even and odd powers of the point) */

/* y = BT x, 8 -> 8 */
static inline void bt1(v4f *y, int ys, const v4f *x, int xs)
{
    const v4f x0 = x[0], x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs], x4 = x[4 * xs],
              x5 = x[5 * xs], x6 = x[6 * xs], x7 = x[7 * xs];
    const v4f k525 = v4f_set1(5.25f), k425 = v4f_set1(4.25f), k125 = v4f_set1(1.25f),
              k025 = v4f_set1(0.25f), k05 = v4f_set1(0.5f), k25 = v4f_set1(2.5f);
    v4f a, b;
    y[0] = (x6 - x0) + k525 * (x2 - x4);
    a = x2 + x6 - k425 * x4;
    b = x1 + x5 - k425 * x3;
    y[ys] = a + b;
    y[2 * ys] = a - b;
    a = k025 * x2 + x6 - k125 * x4;
    b = k05 * x1 - k25 * x3 + (x5 + x5);
    y[3 * ys] = a + b;
    y[4 * ys] = a - b;
    a = v4f_set1(4.0f) * x2 + x6 - v4f_set1(5.0f) * x4;
    b = (x1 + x1) - k25 * x3 + k05 * x5;
    y[5 * ys] = a + b;
    y[6 * ys] = a - b;
    y[7 * ys] = (x7 - x1) + k525 * (x3 - x5);
}

/* y = AT x, 8 -> 4 */
static inline void at1(v4f *y, int ys, const v4f *x, int xs)
{
    const v4f s1 = x[xs] + x[2 * xs], d1 = x[xs] - x[2 * xs];
    const v4f s2 = x[3 * xs] + x[4 * xs], d2 = x[3 * xs] - x[4 * xs];
    const v4f s3 = x[5 * xs] + x[6 * xs], d3 = x[5 * xs] - x[6 * xs];
    y[0] = x[0] + s1 + s2 + s3;
    y[ys] = d1 + (d2 + d2) + v4f_set1(0.5f) * d3;
    y[2 * ys] = s1 + v4f_set1(4.0f) * s2 + v4f_set1(0.25f) * s3;
    y[3 * ys] = d1 + v4f_set1(8.0f) * d2 + v4f_set1(0.125f) * d3 + x[7 * xs];
}

/* y = A x, 4 -> 8 */
static inline void a1(v4f *y, int ys, const v4f *x, int xs)
{
    const v4f x0 = x[0], x1 = x[xs], x2 = x[2 * xs], x3 = x[3 * xs];
    v4f e, o;
    y[0] = x0;
    e = x0 + x2;
    o = x1 + x3;
    y[ys] = e + o;
    y[2 * ys] = e - o;
    e = x0 + v4f_set1(4.0f) * x2;
    o = (x1 + x1) + v4f_set1(8.0f) * x3;
    y[3 * ys] = e + o;
    y[4 * ys] = e - o;
    e = x0 + v4f_set1(0.25f) * x2;
    o = v4f_set1(0.5f) * x1 + v4f_set1(0.125f) * x3;
    y[5 * ys] = e + o;
    y[6 * ys] = e - o;
    y[7 * ys] = x3;
}

/* y[r*ys] = sum_c P[r][c] x[c*xs], for the weight transforms (once per call) */
static inline void tf1(v4f *y, int ys, const v4f *x, int xs, const float *P, int R, int Cc)
{
    for (int r = 0; r < R; r++) {
        v4f acc = {0};
        for (int c = 0; c < Cc; c++)
            acc += v4f_set1(P[r * Cc + c]) * x[c * xs];
        y[r * ys] = acc;
    }
}

/* Y (R,R) = P X P^T for X (Cc,Cc), P (R,Cc) */
static void tf2(v4f *Y, const v4f *X, const float *P, int R, int Cc)
{
    v4f Z[8 * 8];   /* (R, Cc) */
    for (int j = 0; j < Cc; j++)
        tf1(Z + j, Cc, X + j, Cc, P, R, Cc);
    for (int i = 0; i < R; i++)
        tf1(Y + i * R, 1, Z + i * Cc, 1, P, R, Cc);
}

struct wgeom {
    int B, C, OC, H, W;
    int C4, OC4;    /* channels rounded up to a multiple of 4 */
    int TH, TW, TI; /* tiles down, across, per image */
    int Hp, Wp;     /* the repacked, zero-padded plane */
    int g, Tg;      /* images per group, tiles per full group */
    int ts;         /* tiles per transform + GEMM pass (the whole group: slices
                     * of fewer tiles measured no faster) */
    size_t xs;      /* floats between the 64 matrices of P and Q (see wino_stride) */
};

/* The transforms write (and read) one vector to each of the 64 matrices per
 * tile: 64 streams a stride apart. A stride that is a multiple of 4 KB puts
 * them all in the same cache sets (L1 is 8-way: every tile then misses); a
 * stride of 64 bytes past a multiple of 4 KB spreads them over 64 sets. */
static size_t wino_stride(size_t n)
{
    return (n + 1023) / 1024 * 1024 + 16;
}

static struct wgeom wgeom_of(int B, int C, int OC, int H, int W)
{
    struct wgeom w;
    w.B = B, w.C = C, w.OC = OC, w.H = H, w.W = W;
    w.C4 = (C + 3) / 4 * 4;
    w.OC4 = (OC + 3) / 4 * 4;
    w.TH = (H + 3) / 4;
    w.TW = (W + 3) / 4;
    w.TI = w.TH * w.TW;
    w.Hp = 4 * w.TH + 4;
    w.Wp = 4 * w.TW + 4;
    w.g = (CMR_WINO_CHUNK + w.TI - 1) / w.TI;
    if (w.g > B)
        w.g = B;
    w.Tg = w.g * w.TI;
    w.ts = w.Tg;
    w.xs = wino_stride((size_t)w.ts * (w.C4 > w.OC4 ? w.C4 : w.OC4));
    return w;
}

/* floats of one transformed weight matrix packed for cmr_gemm_fixed */
static size_t packed_floats(const struct wgeom *w) { return cmr_gemm_fixed_pack_floats(w->OC4, w->C4); }

size_t cmr_wino_tiles(int B, int H, int W) { return (size_t)B * ((H + 3) / 4) * ((W + 3) / 4); }

/* U (or dU): 64*OC4*C4; P, Q: 64*Tg*max(C4,OC4) each; Xr, Dr: the repacked group */
size_t cmr_wino_scratch_floats(int C, int OC, int B, int H, int W)
{
    struct wgeom w = wgeom_of(B, C, OC, H, W);
    size_t nu = (size_t)64 * w.OC4 * w.C4, npk = 64 * packed_floats(&w);
    return (nu > npk ? nu : npk) + (size_t)2 * 64 * w.xs +
           (size_t)w.g * (w.C4 + w.OC4) * w.Hp * w.Wp;
}

/* Xr (g, C4/4, Hp, Wp, 4) <- src (g, C, H, W), zero-padded by 2 on the top
 * and left and up to the tile grid on the bottom and right */
static void repack(float *Xr, const float *src, int g, int C, int C4, const struct wgeom *w)
{
    const int H = w->H, W = w->W, Hp = w->Hp, Wp = w->Wp;
    const size_t plane = (size_t)H * W;
    memset(Xr, 0, sizeof(float) * (size_t)g * C4 * Hp * Wp);
    for (int i = 0; i < g; i++)
        for (int cg = 0; cg < C4 / 4; cg++) {
            float *dst = Xr + ((size_t)i * (C4 / 4) + cg) * Hp * Wp * 4;
            const float *s[4];
            for (int l = 0; l < 4; l++)
                s[l] = 4 * cg + l < C ? src + ((size_t)i * C + 4 * cg + l) * plane : NULL;
            for (int y = 0; y < H; y++) {
                float *row = dst + ((size_t)(y + 2) * Wp + 2) * 4;
                int x = 0;
                for (; x + 4 <= W; x += 4) {
                    v4f r[4];
                    for (int l = 0; l < 4; l++)
                        r[l] = s[l] ? v4f_load(s[l] + (size_t)y * W + x) : (v4f){0, 0, 0, 0};
                    v4f_transpose(&r[0], &r[1], &r[2], &r[3]);
                    for (int k = 0; k < 4; k++)
                        v4f_store(row + (size_t)(x + k) * 4, r[k]);
                }
                for (; x < W; x++)
                    for (int l = 0; l < 4; l++)
                        row[(size_t)x * 4 + l] = s[l] ? s[l][(size_t)y * W + x] : 0.0f;
            }
        }
}

/* the tile t of a group: image, tile row, tile column */
static inline void tile_of(const struct wgeom *w, int t, int *img, int *th, int *tw)
{
    *img = t / w->TI;
    int r = t % w->TI;
    *th = r / w->TW;
    *tw = r % w->TW;
}

/* V[xi][t][c] (ld C4, xi stride xs) = BT d BT^T for the tiles t0 .. t0+nt-1 of Xr */
static void input_transform(float *V, const float *Xr, int C4, const struct wgeom *w, int t0, int nt)
{
    const int Hp = w->Hp, Wp = w->Wp;
    const size_t xs = w->xs;
    for (int t = 0; t < nt; t++) {
        int img, th, tw;
        tile_of(w, t0 + t, &img, &th, &tw);
        for (int cg = 0; cg < C4 / 4; cg++) {
            const float *p = Xr + ((((size_t)img * (C4 / 4) + cg) * Hp + 4 * th) * Wp + 4 * tw) * 4;
            v4f d[64], z[64], v[64];
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 8; j++)
                    d[i * 8 + j] = v4f_load(p + ((size_t)i * Wp + j) * 4);
            for (int j = 0; j < 8; j++)
                bt1(z + j, 8, d + j, 8);
            for (int i = 0; i < 8; i++)
                bt1(v + i * 8, 1, z + i * 8, 1);
            float *q = V + (size_t)t * C4 + 4 * cg;
            for (int k = 0; k < 64; k++)
                v4f_store(q + k * xs, v[k]);
        }
    }
}

/* dM[xi][t][o] (ld OC4) = A dY A^T for the nt tiles of the repacked dout Dr */
static void grad_transform(float *dM, const float *Dr, int OC4, const struct wgeom *w, int t0, int nt)
{
    const int Hp = w->Hp, Wp = w->Wp;
    const size_t xs = w->xs;
    for (int t = 0; t < nt; t++) {
        int img, th, tw;
        tile_of(w, t0 + t, &img, &th, &tw);
        for (int og = 0; og < OC4 / 4; og++) {
            const float *p =
                Dr + ((((size_t)img * (OC4 / 4) + og) * Hp + 4 * th + 2) * Wp + 4 * tw + 2) * 4;
            v4f dy[16], z[32], m[64];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    dy[i * 4 + j] = v4f_load(p + ((size_t)i * Wp + j) * 4);
            for (int j = 0; j < 4; j++)
                a1(z + j, 4, dy + j, 4);
            for (int i = 0; i < 8; i++)
                a1(m + i * 8, 1, z + i * 4, 1);
            float *q = dM + (size_t)t * OC4 + 4 * og;
            for (int k = 0; k < 64; k++)
                v4f_store(q + k * xs, m[k]);
        }
    }
}

/* out (g, OC, H, W) = (or +=) AT M AT^T (+ bias when writing) for the nt tiles;
 * M[xi][t][o] (ld OC4) */
static void output_transform(float *out, int accumulate, const float *M, int OC, int OC4,
                             const float *bias, const struct wgeom *w, int t0, int nt)
{
    const int H = w->H, W = w->W;
    const size_t xs = w->xs, plane = (size_t)H * W;
    for (int t = 0; t < nt; t++) {
        int img, th, tw;
        tile_of(w, t0 + t, &img, &th, &tw);
        const int y0 = 4 * th, x0 = 4 * tw;
        const int ni = H - y0 < 4 ? H - y0 : 4, nj = W - x0 < 4 ? W - x0 : 4;
        for (int og = 0; og < OC4 / 4; og++) {
            const float *q = M + (size_t)t * OC4 + 4 * og;
            v4f m[64], z[32], y[16];
            for (int k = 0; k < 64; k++)
                m[k] = v4f_load(q + k * xs);
            for (int j = 0; j < 8; j++)
                at1(z + j, 8, m + j, 8);
            for (int i = 0; i < 4; i++)
                at1(y + i * 4, 1, z + i * 8, 1);
            /* y[i*4+j] holds four channels; turn each row into four channel rows */
            for (int i = 0; i < ni; i++) {
                v4f r[4] = {y[i * 4], y[i * 4 + 1], y[i * 4 + 2], y[i * 4 + 3]};
                v4f_transpose(&r[0], &r[1], &r[2], &r[3]);
                for (int l = 0; l < 4 && 4 * og + l < OC; l++) {
                    const int o = 4 * og + l;
                    float *dst = out + ((size_t)img * OC + o) * plane + (size_t)(y0 + i) * W + x0;
                    if (accumulate) {
                        if (nj == 4)
                            v4f_store(dst, v4f_load(dst) + r[l]);
                        else
                            for (int j = 0; j < nj; j++)
                                dst[j] += r[l][j];
                    } else {
                        v4f v = r[l] + v4f_set1(bias ? bias[o] : 0.0f);
                        if (nj == 4)
                            v4f_store(dst, v);
                        else
                            for (int j = 0; j < nj; j++)
                                dst[j] = v[j];
                    }
                }
            }
        }
    }
}

/* U[xi][m][k] (Mo4 rows, K4 columns, zero-padded) = G g G^T
 * flip == 0: m < OC, k < C,  g = weight[m][k]                     (forward)
 * flip == 1: m < C,  k < OC, g = weight[k][m] rotated by 180 deg  (dinp) */
static void weight_transform(float *U, const float *weight, int OC, int C, int flip,
                             const struct wgeom *w)
{
    const int Mo = flip ? C : OC, K = flip ? OC : C;
    const int Mo4 = flip ? w->C4 : w->OC4, K4 = flip ? w->OC4 : w->C4;
    memset(U, 0, sizeof(float) * 64 * (size_t)Mo4 * K4);
    for (int m = 0; m < Mo; m++)
        for (int k0 = 0; k0 < K; k0 += 4) {
            v4f gg[25], u[64];
            memset(gg, 0, sizeof gg);
            for (int l = 0; l < 4 && k0 + l < K; l++) {
                int k = k0 + l;
                const float *s = flip ? weight + ((size_t)k * C + m) * 25
                                      : weight + ((size_t)m * C + k) * 25;
                for (int i = 0; i < 25; i++)
                    gg[i][l] = flip ? s[24 - i] : s[i];
            }
            tf2(u, gg, &WINO_G[0][0], 8, 5);
            for (int x = 0; x < 64; x++)
                v4f_store(U + ((size_t)x * Mo4 + m) * K4 + k0, u[x]);
        }
}

/* Up[xi] (OC4, C4) = G g G^T, forward (flip == 0) only, packed for
 * cmr_gemm_fixed: Up[xi][o / 16][c][o % 16], zero-padded */
static void weight_transform_packed(float *Up, const float *weight, int OC, int C, const struct wgeom *w)
{
    const size_t ps = packed_floats(w);
    const int C4 = w->C4;
    memset(Up, 0, sizeof(float) * 64 * ps);
    for (int m = 0; m < OC; m++)
        for (int k0 = 0; k0 < C; k0 += 4) {
            v4f gg[25], u[64];
            memset(gg, 0, sizeof gg);
            for (int l = 0; l < 4 && k0 + l < C; l++) {
                const float *src = weight + ((size_t)m * C + k0 + l) * 25;
                for (int i = 0; i < 25; i++)
                    gg[i][l] = src[i];
            }
            tf2(u, gg, &WINO_G[0][0], 8, 5);
            for (int x = 0; x < 64; x++) {
                float *dst = Up + x * ps + ((size_t)(m / 16) * C4 + k0) * 16 + m % 16;
                for (int l = 0; l < 4; l++)
                    dst[l * 16] = u[x][l];
            }
        }
}

/* dweight (OC,C,5,5) += G^T dU G, dU[xi][o][c] (OC4, C4) */
static void weight_grad_transform(float *dweight, const float *dU, const struct wgeom *w)
{
    const int OC = w->OC, C = w->C, OC4 = w->OC4, C4 = w->C4;
    for (int o = 0; o < OC; o++)
        for (int c0 = 0; c0 < C; c0 += 4) {
            v4f du[64], dw[25];
            for (int x = 0; x < 64; x++)
                du[x] = v4f_load(dU + ((size_t)x * OC4 + o) * C4 + c0);
            tf2(dw, du, &WINO_GT[0][0], 5, 8);
            for (int l = 0; l < 4 && c0 + l < C; l++) {
                float *dst = dweight + ((size_t)o * C + c0 + l) * 25;
                for (int i = 0; i < 25; i++)
                    dst[i] += dw[i][l];
            }
        }
}

struct wbufs {
    float *U, *P, *Q, *Xr, *Dr;
};

static struct wbufs wbufs_of(float *scratch, const struct wgeom *w)
{
    struct wbufs b;
    size_t nu = (size_t)64 * w->OC4 * w->C4, np = (size_t)64 * w->xs, npk = 64 * packed_floats(w);
    if (npk > nu)
        nu = npk;
    b.U = scratch;
    b.P = b.U + nu;
    b.Q = b.P + np;
    b.Xr = b.Q + np;
    b.Dr = b.Xr + (size_t)w->g * w->C4 * w->Hp * w->Wp;
    return b;
}

void cmr_wino_forward(float *out, float *scratch, const float *inp, const float *weight,
                      const float *bias, int B, int C, int OC, int H, int W)
{
    const struct wgeom w = wgeom_of(B, C, OC, H, W);
    const struct wbufs s = wbufs_of(scratch, &w);
    const size_t in_sz = (size_t)C * H * W, out_sz = (size_t)OC * H * W;
    const size_t ps = w.xs, qs = w.xs, us = packed_floats(&w);
    /* Maps of at least CMR_WINO_CHUNK tiles take one image per GEMM whatever
     * the batch: a call of a shape fixed by the layer, where OpenBLAS rounds
     * every image the same way, at OpenBLAS's speed. Smaller maps put several
     * images in one GEMM: there the fixed GEMM (a tile's outputs do not
     * depend on the other tiles of the group, so an image's do not depend
     * on its batch). The choice depends on the map alone. */
    const int per_image = w.TI >= CMR_WINO_CHUNK;
    if (per_image)
        weight_transform(s.U, weight, OC, C, 0, &w);
    else
        weight_transform_packed(s.U, weight, OC, C, &w);
    for (int b0 = 0; b0 < B; b0 += w.g) {
        const int g = B - b0 < w.g ? B - b0 : w.g, ng = g * w.TI;
        repack(s.Xr, inp + b0 * in_sz, g, C, w.C4, &w);
        for (int t0 = 0; t0 < ng; t0 += w.ts) {
            const int nt = ng - t0 < w.ts ? ng - t0 : w.ts;
            input_transform(s.P, s.Xr, w.C4, &w, t0, nt);
            /* M[xi] (nt, OC4) = V[xi] (nt, C4) . U[xi]^T (C4, OC4) */
            for (int x = 0; x < 64; x++) {
                if (per_image)
                    cmr_sgemm(0, 1, nt, w.OC4, w.C4, 1.0f, s.P + x * ps, w.C4, s.U + (size_t)x * w.OC4 * w.C4, w.C4,
                              0.0f, s.Q + x * qs, w.OC4);
                else
                    cmr_gemm_fixed(nt, w.OC4, w.C4, s.P + x * ps, w.C4, s.U + x * us, s.Q + x * qs, w.OC4);
            }
            output_transform(out + b0 * out_sz, 0, s.Q, OC, w.OC4, bias, &w, t0, nt);
        }
    }
}

void cmr_wino_backward(float *dinp, float *dweight, float *scratch, const float *dout,
                       const float *inp, const float *weight, int B, int C, int OC, int H, int W)
{
    const struct wgeom w = wgeom_of(B, C, OC, H, W);
    const struct wbufs s = wbufs_of(scratch, &w);
    const size_t in_sz = (size_t)C * H * W, out_sz = (size_t)OC * H * W;
    const size_t ps = w.xs, qs = w.xs;
    /* two passes over the batch, so that dU and the transformed weights can
     * share one buffer; dout is repacked in each (a cheap copy) */
    if (dweight) {
        int first = 1;
        for (int b0 = 0; b0 < B; b0 += w.g) {
            const int g = B - b0 < w.g ? B - b0 : w.g, ng = g * w.TI;
            repack(s.Dr, dout + b0 * out_sz, g, OC, w.OC4, &w);
            repack(s.Xr, inp + b0 * in_sz, g, C, w.C4, &w);
            for (int t0 = 0; t0 < ng; t0 += w.ts) {
                const int nt = ng - t0 < w.ts ? ng - t0 : w.ts;
                input_transform(s.P, s.Xr, w.C4, &w, t0, nt);
                grad_transform(s.Q, s.Dr, w.OC4, &w, t0, nt);
                /* dU[xi] (OC4, C4) (+)= dM[xi]^T (OC4, nt) . V[xi] (nt, C4) */
                for (int x = 0; x < 64; x++)
                    cmr_sgemm(1, 0, w.OC4, w.C4, nt, 1.0f, s.Q + x * qs, w.OC4, s.P + x * ps, w.C4,
                              first ? 0.0f : 1.0f, s.U + (size_t)x * w.OC4 * w.C4, w.C4);
                first = 0;
            }
        }
        weight_grad_transform(dweight, s.U, &w);
    }
    if (dinp) {
        /* the forward convolution of dout (OC channels) into C channels, with
         * U'[xi][c][o] (C4, OC4) from the rotated, transposed weights */
        weight_transform(s.U, weight, OC, C, 1, &w);
        for (int b0 = 0; b0 < B; b0 += w.g) {
            const int g = B - b0 < w.g ? B - b0 : w.g, ng = g * w.TI;
            repack(s.Dr, dout + b0 * out_sz, g, OC, w.OC4, &w);
            for (int t0 = 0; t0 < ng; t0 += w.ts) {
                const int nt = ng - t0 < w.ts ? ng - t0 : w.ts;
                /* P holds the transformed dout here (ld OC4), Q the result (ld C4) */
                input_transform(s.P, s.Dr, w.OC4, &w, t0, nt);
                for (int x = 0; x < 64; x++)
                    cmr_sgemm(0, 1, nt, w.C4, w.OC4, 1.0f, s.P + x * qs, w.OC4,
                              s.U + (size_t)x * w.C4 * w.OC4, w.OC4, 0.0f, s.Q + x * ps, w.C4);
                output_transform(dinp + b0 * in_sz, 1, s.Q, C, w.C4, NULL, &w, t0, nt);
            }
        }
    }
}
