// reduce.cu: reductions to a scalar, deterministic (no float atomics).
//   sum_squares: out[0] += sum_i x[i]^2      x[n] -> out[1] (accumulates)
//     pass 1 sum_squares_partial:  block b reduces a grid-stride share of x into partial[b]
//            (per-thread sums, warp shuffles, then the warp totals through shared memory);
//     pass 2 sum_squares_finalize: one block reduces partial[0..blocks) the same way and adds
//            the total to out[0]. The grid size depends only on n, so the result is bitwise
//            reproducible for a given n on every device.
//   Gradient (of s = sum x^2): dx = 2 x ds, computed by the caller with axpby-style kernels.
//
// Per-channel sums that accumulate parameter gradients (bias, dgamma/dbeta, dw over images):
//   channel_sum_accumulate: x[outer, channels, inner] -> out[channels] +=
//     out[c] += sum_{b, q} x[(b * channels + c) * inner + q]      (conv db: dy[B, Cout, Ho*Wo])
//     One block per channel owns its output: a per-thread sum, then the block tree. No atomics.
//   column_sum_accumulate: x[rows, cols] -> out[cols] +=, out[j] += sum_r x[r * cols + j]
//     (linear db: dy[N, out]; group-norm and conv-dw partials [B, C]). A block of 256 threads
//     owns 32 columns: thread (lane, phase) sums rows phase, phase + 8, ... of column lane
//     (coalesced 128-byte rows), then the 8 phase sums are added in phase order.
//     Deterministic: the order depends only on the shapes.
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

extern "C" __global__ void channel_sum_accumulate(const float* x, int outer, int channels, int inner, float* out)
{
    __shared__ float warp_sums[32];
    const int c = blockIdx.x;
    float acc = 0.0f;
    for (int b = 0; b < outer; b++)
    {
        const float* row = x + ((long long)b * channels + c) * inner;
        for (int q = threadIdx.x; q < inner; q += blockDim.x) acc += row[q];
    }
    acc = mvq_block_sum(acc, warp_sums);
    if (threadIdx.x == 0) out[c] += acc;
}

// Requires blockDim.x == 256 (32 columns x 8 row phases).
extern "C" __global__ void column_sum_accumulate(const float* x, int rows, int cols, float* out)
{
    __shared__ float part[8][33];
    const int lane = threadIdx.x & 31, phase = threadIdx.x >> 5;
    const int j = blockIdx.x * 32 + lane;
    float acc = 0.0f;
    if (j < cols)
        for (long long r = phase; r < rows; r += 8) acc += x[r * cols + j];
    part[phase][lane] = acc;
    __syncthreads();
    if (phase == 0 && j < cols)
    {
        float s = part[0][lane];
        for (int p = 1; p < 8; p++) s += part[p][lane];
        out[j] += s;
    }
}
