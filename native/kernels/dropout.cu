// dropout.cu: inverted dropout with a counter-based keep mask, so the backward pass (and the CPU backend)
// recompute the same mask from (seed, index) instead of storing it.
//   keep(i) = (h(i) >> 8) >= threshold, h(i) = mix(mix(i) ^ seed), threshold = round(p * 2^24)
//   dropout: y[i] = keep(i) ? x[i] * scale : 0, scale = 1 / (1 - p)   (written)
// The op is its own adjoint: the backward pass is the same call on dy with the same seed.
#include "common.cuh"

// 32-bit integer finaliser (xor-shift / multiply rounds); the CPU twin is CpuDropout.Mix.
static __device__ __forceinline__ unsigned int mvq_dropout_mix(unsigned int h)
{
    h ^= h >> 16; h *= 0x7feb352du;
    h ^= h >> 15; h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

extern "C" __global__ void dropout_apply(const float* x, float* y, int n, unsigned int seed, unsigned int threshold, float scale)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
    {
        const unsigned int h = mvq_dropout_mix(mvq_dropout_mix((unsigned int)i) ^ seed);
        y[i] = (h >> 8) >= threshold ? x[i] * scale : 0.0f;
    }
}
