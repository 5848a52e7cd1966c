// reduce.cu: reductions to a scalar, deterministic (no float atomics).
//   sum_squares: out[0] += sum_i x[i]^2      x[n] -> out[1] (accumulates)
//     pass 1 sum_squares_partial:  block b reduces a grid-stride share of x into partial[b]
//            (per-thread sums, warp shuffles, then the warp totals through shared memory);
//     pass 2 sum_squares_finalize: one block reduces partial[0..blocks) the same way and adds
//            the total to out[0]. The grid size depends only on n, so the result is bitwise
//            reproducible for a given n on every device.
//   Gradient (of s = sum x^2): dx = 2 x ds, computed by the caller with axpby-style kernels.
#include "common.cuh"

extern "C" __global__ void sum_squares_partial(const float* x, int n, float* partial)
{
    __shared__ float warp_sums[32];
    float acc = 0.0f;
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride()) { float v = x[i]; acc += v * v; }
    acc = mvq_block_sum(acc, warp_sums);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

extern "C" __global__ void sum_squares_finalize(const float* partial, int blocks, float* out)
{
    __shared__ float warp_sums[32];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x) acc += partial[i];
    acc = mvq_block_sum(acc, warp_sums);
    if (threadIdx.x == 0) out[0] += acc;
}
