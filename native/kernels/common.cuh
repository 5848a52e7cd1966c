// common.cuh: helpers shared by every kernel file (NVRTC passes it as a named header;
// the host emulator compiles it as C++ with -DMVQ_EMU). No standard headers: NVRTC has none.
//
// Conventions: 4-byte elements; grid-stride loops over 64-bit indices; reductions are
// deterministic (fixed tree order, no float atomics); blockDim.x is a multiple of 32.
#pragma once

#define MVQ_FLT_MAX 3.402823466e+38f
#define MVQ_FULL_MASK 0xffffffffu

// First index and stride of a 1-D grid-stride loop.
static __device__ __forceinline__ long long mvq_global_index() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
static __device__ __forceinline__ long long mvq_grid_stride() { return (long long)gridDim.x * blockDim.x; }

// Sum over the 32 lanes of a warp; the total lands in lane 0 (fixed shuffle order).
static __device__ __forceinline__ float mvq_warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

// Sum over the block; the total is valid in thread 0. `warp_sums` is a __shared__ float[32]
// owned by the calling kernel (shared arrays are declared in kernels, not in helpers).
static __device__ __forceinline__ float mvq_block_sum(float v, float* warp_sums)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = mvq_warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    v = threadIdx.x < warps ? warp_sums[lane] : 0.0f;
    if (warp == 0) v = mvq_warp_sum(v);
    return v;
}

// Double-precision variants for loss and statistics sums (the CPU backend sums these in double).
static __device__ __forceinline__ double mvq_warp_sum_d(double v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

// Like mvq_block_sum; `warp_sums` is a __shared__ double[32]. Callers that reduce again with the
// same warp_sums must __syncthreads() in between (warp 0 may still be reading it).
static __device__ __forceinline__ double mvq_block_sum_d(double v, double* warp_sums)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = mvq_warp_sum_d(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    v = threadIdx.x < warps ? warp_sums[lane] : 0.0;
    if (warp == 0) v = mvq_warp_sum_d(v);
    return v;
}

static __device__ __forceinline__ int mvq_min(int a, int b) { return a < b ? a : b; }
static __device__ __forceinline__ int mvq_max(int a, int b) { return a > b ? a : b; }
static __device__ __forceinline__ float mvq_minf(float a, float b) { return a < b ? a : b; }
static __device__ __forceinline__ double mvq_mind(double a, double b) { return a < b ? a : b; }
static __device__ __forceinline__ double mvq_maxd(double a, double b) { return a > b ? a : b; }
// A quiet NaN (no <cmath> under NVRTC).
static __device__ __forceinline__ float mvq_nan() { return __int_as_float(0x7fc00000); }
static __device__ __forceinline__ long long mvq_min(long long a, long long b) { return a < b ? a : b; }

static __device__ __forceinline__ float mvq_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
