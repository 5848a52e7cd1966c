// layer_norm.cu: layer normalisation over the last dimension, x[N, C] (rows n, C columns).
//   layer_norm_forward: one warp per row. Two passes in double (sum, then the sum of squared
//     deviations from the mean: no cancellation), warp butterfly reductions;
//     mean[n] = m, rstd[n] = 1/sqrt(var + eps) (biased var);
//     y = ((x - mf) - dm) * rstd * gamma + beta, mf = float(m), dm = float(m - mf): the part of the
//     mean that float rounding drops is carried by dm, as on the CPU.
//   layer_norm_backward: one warp per row; xhat = (x - m) r with the stored float m, r;
//     g = gamma dy, c1 = sum_c g / C, c2 = sum_c g xhat / C (warp sums),
//     dx = r (g - c1 - xhat c2)   (written); part[n, c] = dy xhat (workspace).
//     dgamma += column sums of part, dbeta += column sums of dy: column_sum_accumulate (reduce.cu),
//     one owner per column, fixed order. No atomics.
#include "common.cuh"

static __device__ __forceinline__ double mvq_warp_allsum_d(double v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ float mvq_warp_allsum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

extern "C" __global__ void layer_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, int n, int c, float eps)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= n) return; // whole warps leave together
    const float* xs = x + row * c;
    float* ys = y + row * c;
    double s = 0.0;
    for (int j = lane; j < c; j += 32) s += xs[j];
    const double m = mvq_warp_allsum_d(s) / (double)c;
    double v = 0.0;
    for (int j = lane; j < c; j += 32) { const double d = xs[j] - m; v += d * d; }
    const double r = 1.0 / sqrt(mvq_warp_allsum_d(v) / (double)c + (double)eps);
    const float mf = (float)m, dm = (float)(m - (double)mf), rf = (float)r;
    if (lane == 0) { mean[row] = mf; rstd[row] = rf; }
    for (int j = lane; j < c; j += 32) ys[j] = ((xs[j] - mf) - dm) * rf * gamma[j] + beta[j];
}

extern "C" __global__ void layer_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy, float* dx, float* part, int n, int c)
{
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= n) return;
    const float m = mean[row], r = rstd[row];
    const long long off = row * c;
    float s1 = 0.0f, s2 = 0.0f;
    for (int j = lane; j < c; j += 32)
    {
        const float d = dy[off + j], xh = (x[off + j] - m) * r, g = d * gamma[j];
        s1 += g; s2 += g * xh;
        part[off + j] = d * xh;
    }
    const float c1 = mvq_warp_allsum(s1) / (float)c, c2 = mvq_warp_allsum(s2) / (float)c;
    for (int j = lane; j < c; j += 32)
        dx[off + j] = r * (dy[off + j] * gamma[j] - c1 - (x[off + j] - m) * r * c2);
}
