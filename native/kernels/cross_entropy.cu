// cross_entropy.cu: softmax cross-entropy per row with a valid column range [lo, hi) per row (segment mask);
// columns outside it count as -inf. logits[N, V], targets[N] (int), bounds[N, 2] (int) = lo, hi.
//   cross_entropy_forward: one warp per row; max and sum of exp over [lo, hi) (warp butterflies),
//     lse[n] = max + log sum exp(x - max), loss[n] = lse[n] - x[n, target[n]]   (written).
//   cross_entropy_backward: one warp per row; dlogits[n, j] = dloss[n] (exp(x[n, j] - lse[n]) - [j = target])
//     inside [lo, hi), 0 outside (written). Gradient of loss = lse - x_target: softmax minus one-hot.
//   A row with lo < 0, hi > V, lo >= hi or a target outside [lo, hi) gets NaN loss/lse and a NaN
//   dlogits row (the CPU backend refuses such input before computing).
#include "common.cuh"

static __device__ __forceinline__ float mvq_xent_allsum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ float mvq_xent_allmax(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) { const float o = __shfl_xor_sync(MVQ_FULL_MASK, v, offset); v = o > v ? o : v; }
    return v;
}

static __device__ __forceinline__ bool mvq_xent_valid(int lo, int hi, int t, int v)
{
    return lo >= 0 && hi <= v && lo < hi && t >= lo && t < hi;
}

extern "C" __global__ void cross_entropy_forward(const float* logits, const int* targets, const int* bounds, float* loss, float* lse, int n, int v)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= n) return; // whole warps leave together
    const int lo = bounds[2 * row], hi = bounds[2 * row + 1], t = targets[row];
    if (!mvq_xent_valid(lo, hi, t, v))
    {
        if (lane == 0) { loss[row] = mvq_nan(); lse[row] = mvq_nan(); }
        return;
    }
    const float* x = logits + row * v;
    float m = -MVQ_FLT_MAX;
    for (int j = lo + lane; j < hi; j += 32) m = x[j] > m ? x[j] : m;
    m = mvq_xent_allmax(m);
    float s = 0.0f;
    for (int j = lo + lane; j < hi; j += 32) s += expf(x[j] - m);
    const float l = m + logf(mvq_xent_allsum(s));
    if (lane == 0) { lse[row] = l; loss[row] = l - x[t]; }
}

extern "C" __global__ void cross_entropy_backward(const float* logits, const int* targets, const int* bounds, const float* lse, const float* dloss, float* dlogits, int n, int v)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= n) return;
    const int lo = bounds[2 * row], hi = bounds[2 * row + 1], t = targets[row];
    const bool ok = mvq_xent_valid(lo, hi, t, v);
    const float* x = logits + row * v;
    float* dx = dlogits + row * v;
    const float l = lse[row], g = dloss[row];
    for (int j = lane; j < v; j += 32)
    {
        float d = 0.0f;
        if (!ok) d = mvq_nan();
        else if (j >= lo && j < hi) d = g * (expf(x[j] - l) - (j == t ? 1.0f : 0.0f));
        dx[j] = d;
    }
}
