/* InfoNCE with in-batch negatives (PAPER.md section 5). See nn.h.
 * The same as F.cross_entropy(a @ p.t() / tau, arange(N)); llm.c's
 * crossentropy_softmax_backward is the model for the backward. */
#include <math.h>

#include "nn/nn.h"

float cmr_infonce_forward(float *probs, const float *a, const float *p, int N, int D, float tau)
{
    /* S (N,N) = a (N,D) . p^T (D,N) / tau, into probs */
    cmr_sgemm(0, 1, N, N, D, 1.0f / tau, a, D, p, D, 0.0f, probs, N);
    double loss = 0;
    for (int i = 0; i < N; i++) {
        float *row = probs + (size_t)i * N;
        double mx = row[0];
        for (int j = 1; j < N; j++)
            if (row[j] > mx)
                mx = row[j];
        double sum = 0;
        for (int j = 0; j < N; j++)
            sum += exp((double)row[j] - mx);
        /* -log softmax(S_i)[i] = log(sum_j exp(S_ij - mx)) - (S_ii - mx) */
        loss += log(sum) - ((double)row[i] - mx);
        for (int j = 0; j < N; j++)
            row[j] = (float)(exp((double)row[j] - mx) / sum);
    }
    return (float)(loss / N);
}

void cmr_infonce_backward(float *da, float *dp, const float *probs, const float *a,
                          const float *p, int N, int D, float tau, float dloss)
{
    /* dS = dloss/N * (probs - I); dA = dS . P / tau; dP = dS^T . A / tau.
     * Written as row loops so no (N,N) scratch is needed (N is a batch size). */
    const float k = dloss / (float)N / tau;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            float ds = k * (probs[(size_t)i * N + j] - (i == j ? 1.0f : 0.0f));
            if (da)
                for (int c = 0; c < D; c++)
                    da[(size_t)i * D + c] += ds * p[(size_t)j * D + c];
            if (dp)
                for (int c = 0; c < D; c++)
                    dp[(size_t)j * D + c] += ds * a[(size_t)i * D + c];
        }
}

int cmr_infonce_correct(const float *probs, int N)
{
    int correct = 0;
    for (int i = 0; i < N; i++) {
        const float *row = probs + (size_t)i * N;
        int best = 0;
        for (int j = 1; j < N; j++)
            if (row[j] > row[best])
                best = j;
        correct += best == i;
    }
    return correct;
}
