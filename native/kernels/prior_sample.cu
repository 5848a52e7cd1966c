// prior_sample.cu: the per-token work of the prior's sampling step done on the device, so that a step reads
// nothing from the host and can be captured once as a CUDA graph and replayed per position
// (MvqNative/Prior/PriorSampler.cs, docs/prior.md). Everything that changes per position is in device memory:
//   pos[0]     the position t being decoded (read by kv_cache_append and attention_decode too);
//   ids[b]     the input token of sequence b at position t (the start token at t = 0; written by prior_sample_draw);
//   base[0]    the index of sequence 0 of the batch among the run's images (int64; the RNG counter).
//
//   prior_sample_embed: x[b, :] (=) = tok[ids[b], :] + posemb[pos[0], :]. Grid-stride over B*C.
//   prior_sample_draw: one block per sequence b. Over the logits of position t's segment, row[j] =
//     logits[b, lo + j], j < v = hi - lo, (lo, hi) = bounds[t]: p_j = expf((row[j] - max) / temperature);
//     with top-k or top-p, the entries are ranked by p descending, ties by index (rank_j = #{i : p_i > p_j or
//     (p_i == p_j and i < j)}), the first top_k kept, then the shortest prefix whose mass (double, in rank order)
//     reaches top_p * (sum of all p, double, in index order); without them the order is the index order.
//     u = uniform(seed, base + b, t) (below); the draw is the first kept entry whose running sum (double, in
//     order) exceeds u * (sum of the kept p); the last kept entry if rounding leaves none.
//     codes[b, t] (=) = j, ids[b] (=) = lo + j.
//     uniform(seed, n, t) = (mix(mix(mix(seed + 0x9E3779B97F4A7C15) ^ n) ^ t) >> 11) * 2^-53, mix = splitmix64's
//     finaliser (MaskHash.Mix on the host): a counter-based draw, so an image's codes do not depend on the batching.
//     Scratch `work` [B, 2 * vocab] (float p, then int order) is written and read by the sequence's block only.
//     The max is a fixed-tree block reduction; the sums and the scan are one thread's loops in a fixed order, so
//     the result does not depend on the thread schedule.
//   prior_sample_advance: pos[0] += 1 (one thread), the last kernel of a step.
#include "common.cuh"

// splitmix64's finaliser, the same function as MaskHash.Mix (MvqNative/Mvq/MaskHash.cs) and device_step.cu's.
static __device__ __forceinline__ unsigned long long mvq_prior_mix(unsigned long long z)
{
    z ^= z >> 30; z *= 0xBF58476D1CE4E5B9ull;
    z ^= z >> 27; z *= 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

extern "C" __global__ void prior_sample_embed(float* x, const float* tok, const float* posemb, const int* ids, const int* pos,
                                              int batch, int c)
{
    const int t = pos[0];
    const long long n = (long long)batch * c;
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
    {
        const long long b = i / c, j = i % c;
        x[i] = tok[(long long)ids[b] * c + j] + posemb[(long long)t * c + j];
    }
}

extern "C" __global__ void prior_sample_draw(int* codes, int* ids, const float* logits, float* work, const int* pos,
                                             const int* bounds, const long long* base, int batch, int vocab, int tmax,
                                             float temperature, int top_k, float top_p, unsigned long long seed)
{
    __shared__ float warp_max[32];
    __shared__ float row_max;
    const int b = blockIdx.x;
    if (b >= batch) return;
    const int t = pos[0];
    const int lo = bounds[2 * t], hi = bounds[2 * t + 1], v = hi - lo;
    const float* row = logits + (long long)b * vocab + lo;
    float* p = work + (long long)b * 2 * vocab;
    int* order = (int*)(p + vocab);

    // Max over the segment: per-thread strided max, then a fixed tree over lanes and warps.
    float m = -MVQ_FLT_MAX;
    for (int j = threadIdx.x; j < v; j += blockDim.x) m = fmaxf(m, row[j]);
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_down_sync(MVQ_FULL_MASK, m, off));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) warp_max[warp] = m;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        float mm = warp_max[0];
        for (int w = 1; w < warps; w++) mm = fmaxf(mm, warp_max[w]);
        row_max = mm;
    }
    __syncthreads();
    const float mx = row_max;
    for (int j = threadIdx.x; j < v; j += blockDim.x) p[j] = expf((row[j] - mx) / temperature);
    __syncthreads();
    const bool filter = top_k > 0 || top_p < 1.0f;
    if (filter)
    {
        for (int j = threadIdx.x; j < v; j += blockDim.x)
        {
            const float pj = p[j];
            int rank = 0;
            for (int i = 0; i < v; i++)
            {
                const float pi = p[i];
                rank += (pi > pj || (pi == pj && i < j)) ? 1 : 0;
            }
            order[rank] = j;
        }
        __syncthreads();
    }
    if (threadIdx.x != 0) return;
    double sum = 0.0;
    for (int j = 0; j < v; j++) sum += (double)p[j];
    int keep = v;
    if (filter)
    {
        if (top_k > 0 && top_k < keep) keep = top_k;
        if (top_p < 1.0f)
        {
            const double target = (double)top_p * sum;
            double acc = 0.0;
            int n = 0;
            while (n < keep) { acc += (double)p[order[n]]; n++; if (acc >= target) break; }
            keep = n;
        }
        sum = 0.0;
        for (int j = 0; j < keep; j++) sum += (double)p[order[j]];
    }
    const unsigned long long image = (unsigned long long)(base[0] + b);
    const unsigned long long h = mvq_prior_mix(mvq_prior_mix(mvq_prior_mix(seed + 0x9E3779B97F4A7C15ull) ^ image) ^ (unsigned long long)t);
    const double u = (double)(h >> 11) * (1.0 / 9007199254740992.0) * sum;
    int pick = filter ? order[keep - 1] : keep - 1;
    double c = 0.0;
    for (int j = 0; j < keep; j++)
    {
        const int k = filter ? order[j] : j;
        c += (double)p[k];
        if (u < c) { pick = k; break; }
    }
    codes[(long long)b * tmax + t] = pick;
    ids[b] = lo + pick;
}

extern "C" __global__ void prior_sample_advance(int* pos)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) pos[0] += 1;
}
