// device_step.cu: the per-step inputs of a training step made on the device, so that a step copies
// nothing from the host and can be captured once as a CUDA graph and replayed (docs/perf/gpu-throughput.md).
// Every value that changes from step to step is read from `state`, a device int64[2]:
//   state[0] = t, steps run by this device pipeline (advanced by step_advance at the end of each step);
//   state[1] = the t of row 0 of the AdamW schedule table (optimizer.cu: adamw_multi_sched).
// Kernel arguments stay the same for every step, which is what a graph replay needs.
//
//   gather_batch: x[b] (=) = data[idx(g)], g = g_base + t*B + b the global image counter, epoch = g / n,
//     pos = g % n, idx = mvq_sample_index(seed, epoch, pos, n): a keyed permutation of [0, n) per epoch
//     (4-round balanced Feistel network on the smallest even number of bits covering n, walked until the
//     value falls inside [0, n)). Without replacement within an epoch; counter-based, so any batch of
//     any step is computable on its own. Formula and a host copy: MvqNative/Data/HashSampler.cs.
//     One block per image; thread 0 computes idx, the block copies the image.
//   mask_words_step: words[i] (=) = MaskWord(seed, step_base + t, i, d2, p) of MvqNative/Mvq/MaskHash.cs
//     (the MVQ training masks of step s = step_base + t), one thread per word.
//   step_advance: state[0] += 1 (one thread).
#include "common.cuh"

static __device__ __forceinline__ unsigned long long mvq_mix64(unsigned long long z)
{
    z ^= z >> 30; z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27; z *= 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static __device__ __forceinline__ unsigned long long mvq_sample_index(unsigned long long seed, unsigned long long epoch,
                                                                      unsigned long long pos, unsigned long long n)
{
    int bits = 2;
    while ((1ull << bits) < n) bits += 2;
    const int half = bits / 2;
    const unsigned long long mask = (1ull << half) - 1ull;
    const unsigned long long key = mvq_mix64(mvq_mix64(seed + 0x9E3779B97F4A7C15ull) ^ epoch);
    unsigned long long x = pos;
    do
    {
        unsigned long long l = x >> half, r = x & mask;
        for (unsigned long long round = 0; round < 4; round++)
        {
            const unsigned long long t = l ^ (mvq_mix64(key ^ ((round << 32) | r)) & mask);
            l = r; r = t;
        }
        x = (l << half) | r;
    } while (x >= n);
    return x;
}

extern "C" __global__ void gather_batch(float* x, const float* data, int n, int image_floats, int batch,
                                        unsigned long long seed, long long g_base, const long long* state)
{
    __shared__ long long src;
    const int b = blockIdx.x;
    if (b >= batch) return;
    if (threadIdx.x == 0)
    {
        const long long g = g_base + state[0] * (long long)batch + b;
        src = (long long)mvq_sample_index(seed, (unsigned long long)(g / n), (unsigned long long)(g % n), (unsigned long long)n);
    }
    __syncthreads();
    const float* from = data + src * (long long)image_floats;
    float* to = x + (long long)b * image_floats;
    for (int i = threadIdx.x; i < image_floats; i += blockDim.x) to[i] = from[i];
}

extern "C" __global__ void mask_words_step(unsigned int* words, int count, unsigned long long seed, unsigned long long step_base,
                                           const long long* state, int d2, unsigned long long thr)
{
    const unsigned long long step = step_base + (unsigned long long)state[0];
    const unsigned long long prefix = mvq_mix64(mvq_mix64(seed + 0x9E3779B97F4A7C15ull) ^ step);
    for (long long i = mvq_global_index(); i < count; i += mvq_grid_stride())
    {
        const unsigned long long h = mvq_mix64(prefix ^ (unsigned long long)i);
        unsigned int w = 0u;
        for (int bit = 0; bit < d2; bit++)
            if ((mvq_mix64(h ^ (unsigned long long)bit) >> 32) >= thr) w |= 1u << bit;
        words[i] = w;
    }
}

extern "C" __global__ void step_advance(long long* state)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) state[0] += 1;
}
