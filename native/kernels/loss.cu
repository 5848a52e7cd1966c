// loss.cu: reconstruction losses and squared errors, reduced in double, deterministically.
//   loss_partial: p[n], t[n] -> partial[blocks] (double), and the gradient for kinds 0/1:
//     kind 0 (mse):  acc += (p - t)^2,  dp = gscale (p - t)        (gscale = Scale 2/n)
//     kind 1 (l1):   acc += |p - t|,    dp = gscale sign(p - t)    (gscale = Scale/n; sign(0) = 0)
//     kind 2 (sse):  acc += (p - t)^2,  no gradient (dp unused, may be 0)
//     Block b reduces a grid-stride share (per-thread double sums, then the block tree).
//   loss_finalize: one block sums partial[0..blocks) the same way; out[0] = (float)(scale * sum)
//     (written: mse Scale/n, l1 Scale/n, sum_squared_error 1, vq_loss 1/n).
//   The grid depends only on n (CudaLoss.BlocksFor), so results are reproducible. No atomics.
#include "common.cuh"

extern "C" __global__ void loss_partial(const float* p, const float* t, float* dp, int n, int kind, float gscale, double* partial)
{
    __shared__ double warp_sums[32];
    double acc = 0.0;
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
    {
        const float d = p[i] - t[i];
        if (kind == 1)
        {
            acc += d < 0.0f ? -(double)d : (double)d;
            dp[i] = gscale * (d > 0.0f ? 1.0f : d < 0.0f ? -1.0f : d * 0.0f);
        }
        else
        {
            acc += (double)d * d;
            if (kind == 0) dp[i] = gscale * d;
        }
    }
    acc = mvq_block_sum_d(acc, warp_sums);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

extern "C" __global__ void loss_finalize(const double* partial, int blocks, float* out, double scale)
{
    __shared__ double warp_sums[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partial[i];
    acc = mvq_block_sum_d(acc, warp_sums);
    if (threadIdx.x == 0) out[0] = (float)(scale * acc);
}
