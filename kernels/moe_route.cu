/* moe_route.cu - a mixture of experts' routing, per token: the router's
 * logits p[n_expert] become softmax(p); the k largest are picked, largest
 * first (a tie: the lower index), and each pick's weight is its
 * probability over the sum of the picked ones (summed in pick order).
 *
 * One thread per token does it all, in the CPU's order of operations
 * (cpu/forward.c route and moe_block, cpu/ops.c m40_op_softmax: the sum of
 * the exponentials in double, then one float reciprocal), so the picks are
 * the CPU's whenever the logits are. A token's experts are a few hundred
 * numbers: one thread is plenty, and the top-k needs no reduction.
 *
 * logits [n_tokens][n_expert] (overwritten by the probabilities), ids and
 * w [n_tokens][k]. Launch: 1-D over n_tokens.
 */
#include "common.cuh"

M40_KERNEL void m40_moe_route(int *ids, float *w, float *logits, int n_tokens, int n_expert,
                              int k) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_tokens)
        return;
    float *p = logits + (long long)t * n_expert;
    float max = p[0];
    for (int i = 1; i < n_expert; i++)
        max = p[i] > max ? p[i] : max;
    double sum = 0.0;
    for (int i = 0; i < n_expert; i++) {
        p[i] = expf(p[i] - max);
        sum += p[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n_expert; i++)
        p[i] *= inv;
    int *pick = ids + (long long)t * k;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n_expert; i++) {
            int taken = 0;
            for (int m = 0; m < j; m++)
                taken |= pick[m] == i;
            if (!taken && (best < 0 || p[i] > p[best]))
                best = i;
        }
        pick[j] = best;
    }
    float total = 0.0f;
    for (int j = 0; j < k; j++)
        total += p[pick[j]];
    for (int j = 0; j < k; j++)
        w[(long long)t * k + j] = p[pick[j]] / total;
}
