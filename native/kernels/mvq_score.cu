// mvq_score.cu: the hypothesis kernels of the MVQ bottleneck (MvqNative/Ops/MvqScoreOps.cs has the
// semantics and shapes; launchers in CudaMvqScore.cs); the other MVQ ops (words, masks, frozen
// BatchNorm, token mixing) are in mvq.cu / CudaMvq.cs.
//   mvq_hidden_stats_partial / _finalize: mean and biased variance of a = w1 (m ⊙ g) + b1 over all
//     B*J*L2 rows. Pass 1: block (jb, b) sums MVQ_STATS_HYPS hypotheses of instance b per feature
//     in double into a workspace row; pass 2 adds the rows in a fixed order. Fixed blocks, so the
//     result never depends on a chunk size or the device.
//   mvq_score_fused: the central kernel. Block (jb, b) scores `jpb` hypotheses of the chunk for
//     instance b without any [B, J, L1, D1] tensor: w1, b1, bnScale, bnShift, w2 (rows padded by one
//     float against bank conflicts), b2, mix, mixBias, g[b] and resid[b] are staged in shared
//     memory; each warp evaluates one hypothesis at a time. With an identity mix (grid heads,
//     L1 = L2) the distance splits per token, so f is streamed: g[b] and resid[b] are read from
//     global memory (L1/L2-cached) tile by tile of `tp` tokens and e^2 is summed as each tile's
//     second layer is computed; shared memory then holds only the weights and a [tp][F] tile per
//     warp, whatever L2 (64x64 and 128x128 grids, any J). The mask word is applied as bits inside
//     the first layer (no float mask), u = a*scale + shift, LeakyReLU into a per-warp h tile of `tp`
//     tokens, f = w2 h + b2 into a per-warp f[L2, D1] tile, then lanes over (l1, d) form
//     e = resid + U f (+ mixBias) and sum e^2 in double with a fixed shuffle tree; the distance is
//     stored as float (as the CPU does) in dist[b, j]. After a barrier thread 0 scans the block's
//     distances in ascending j with a strict < and writes (dist, j) to the workspace.
//   mvq_score_simple: the reference variant (same arguments): one thread per hypothesis,
//     everything recomputed from global memory, no shared staging. Selected by name (CudaMvqScore).
//   mvq_score_finalize: per instance, scans the blocks' (dist, j) in ascending block order and
//     replaces (bestDist, bestIndex) on a strict <; ascending j with strict < everywhere gives the
//     CPU's winner (ties: smallest j; NaN never wins), chunk after chunk.
#include "common.cuh"

#define MVQ_STATS_HYPS 32

// File-local helpers are named hyp_* so that they never collide with common.cuh's mvq_* ones.

static __device__ __forceinline__ bool hyp_bit(unsigned w, int i) { return ((w >> i) & 1u) != 0u; }
static __device__ __forceinline__ float hyp_leaky(float u, float slope) { return u > 0.0f ? u : slope * u; }

// Sum of a double over the 32 lanes; the total lands in lane 0 (fixed shuffle order).
static __device__ __forceinline__ double hyp_warp_sum_d(double v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

// ---------------------------------------------------------------- hidden statistics

// dims = (B, L2, D2, J), F; partial[(b * gridDim.x + jb) * 2F + {0, F} + k] = (sum a, sum a^2).
// g[b] is staged in tiles of `tile` tokens (the launcher sizes the dynamic shared memory to
// tile * D2 floats, at most MVQ_STATS_TILE_FLOATS = 32 KiB, so any L2*D2 runs under the 48 KiB
// default); each thread owns features k and carries their sums from tile to tile.
#define MVQ_STATS_TILE_FLOATS 8192
extern "C" __global__ void mvq_hidden_stats_partial(const float* g, const int* masks, const float* w1, const float* b1, int4 dims, int f, double* partial)
{
    extern __shared__ float gs[]; // [tile * D2]
    const int B = dims.x, L2 = dims.y, D2 = dims.z, J = dims.w;
    const int b = blockIdx.y, j0 = blockIdx.x * MVQ_STATS_HYPS;
    const int jc = mvq_min(MVQ_STATS_HYPS, J - j0);
    const int tile = mvq_max(1, mvq_min(L2, MVQ_STATS_TILE_FLOATS / D2));
    double* out = partial + ((long long)b * gridDim.x + blockIdx.x) * 2 * f;
    for (int l0 = 0; l0 < L2; l0 += tile)
    {
        const int nt = mvq_min(tile, L2 - l0);
        __syncthreads(); // the previous tile is no longer read
        for (int t = threadIdx.x; t < nt * D2; t += blockDim.x) gs[t] = g[((long long)b * L2 + l0) * D2 + t];
        __syncthreads();
        for (int k = threadIdx.x; k < f; k += blockDim.x)
        {
            const float* wk = w1 + (long long)k * D2;
            const float bk = b1[k];
            double sum = 0.0, sq = 0.0;
            for (int jj = 0; jj < jc; jj++)
            {
                const unsigned word = (unsigned)masks[(long long)b * J + j0 + jj];
                for (int l = 0; l < nt; l++)
                {
                    float acc = 0.0f;
                    for (int i = 0; i < D2; i++)
                        if (hyp_bit(word, i)) acc += gs[l * D2 + i] * wk[i];
                    const double a = (double)(acc + bk);
                    sum += a; sq += a * a;
                }
            }
            if (l0 == 0) { out[k] = sum; out[f + k] = sq; }
            else { out[k] += sum; out[f + k] += sq; }
        }
    }
    (void)B;
}

extern "C" __global__ void mvq_hidden_stats_finalize(const double* partial, int parts, int f, double n, float* mean, float* var)
{
    const int k = (int)mvq_global_index();
    if (k >= f) return;
    double sm = 0.0, sq = 0.0;
    for (int p = 0; p < parts; p++) { sm += partial[(long long)p * 2 * f + k]; sq += partial[(long long)p * 2 * f + f + k]; }
    const double m = n > 0.0 ? sm / n : 0.0;
    double v = n > 0.0 ? sq / n - m * m : 0.0;
    if (!(v > 0.0)) v = 0.0;
    mean[k] = (float)m; var[k] = (float)v;
}

// ---------------------------------------------------------------- scoring

// Arguments shared by both variants (plain parameters, in this order):
//   g [B, L2, D2], resid [B, L1, D1], w1 [F, D2], b1 [F], bn_scale [F], bn_shift [F], w2 [D1, F], b2 [D1],
//   mix [L1, L2] and mix_bias [L1, D1] (null with identity), masks [B, J] (unsigned words), dist [B, J],
//   ws (workspace: float bestDist[B * gridDim.x] then int bestJ[B * gridDim.x]), L2, D2, J, F, D1, L1,
//   offset, count, identity, tp (tokens per layer-2 pass), slope. Grid (ceil(count / jpb), B),
//   jpb = ceil(count / gridDim.x).

// Thread 0: first smallest distance among the block's hypotheses, written to the workspace.
static __device__ void hyp_block_best(const float* dist_row, int jfirst, int jc, float* ws, int b)
{
    float best = 0.0f; int bj = -1;
    for (int jj = 0; jj < jc; jj++)
    {
        const float d = dist_row[jfirst + jj];
        if (bj < 0 ? (d == d) : (d < best)) { best = d; bj = jfirst + jj; } // NaN never wins
    }
    const int slot = b * gridDim.x + blockIdx.x, total = gridDim.x * gridDim.y;
    ws[slot] = bj < 0 ? 0.0f : best;
    ((int*)ws)[total + slot] = bj;
}

extern "C" __global__ void __launch_bounds__(128) mvq_score_fused(const float* g_all, const float* resid_all, const float* w1, const float* b1,
    const float* bn_scale, const float* bn_shift, const float* w2, const float* b2, const float* mix, const float* mix_bias, const int* masks,
    float* dist, float* ws, int L2, int D2, int J, int F, int D1, int L1, int offset, int count, int identity, int tp, float slope)
{
    extern __shared__ float sm[];
    const int b = blockIdx.y;
    const int jpb = (count + gridDim.x - 1) / gridDim.x;
    const int jfirst = offset + blockIdx.x * jpb;
    const int jc = mvq_min(jpb, offset + count - jfirst);
    const int D2p = D2 + 1, Fp = F + 1, warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    // Shared layout (floats); the launcher computes the same total (CudaMvqScore.FusedShared).
    float* w1s = sm;                      // [F][D2p]
    float* b1s = w1s + F * D2p;           // [F]
    float* scs = b1s + F;                 // [F]
    float* shs = scs + F;                 // [F]
    float* w2s = shs + F;                 // [D1][Fp]
    float* b2s = w2s + D1 * Fp;           // [D1]
    // Mixed: g[b], resid[b], mix, mixBias staged; per warp h [tp][F] and f [L2][D1].
    // Identity (streamed): nothing more staged; per warp h [tp][F] only.
    float* gs = b2s + D1;                                 // [L2][D2] (mixed only)
    float* rs = gs + (identity ? 0 : L2 * D2);            // [L1][D1] (mixed only)
    float* mixs = rs + (identity ? 0 : L1 * D1);          // [L1][L2] (mixed only)
    float* mbs = mixs + (identity ? 0 : L1 * L2);         // [L1][D1] (mixed only)
    float* hw = mbs + (identity ? 0 : L1 * D1) + warp * (tp * F + (identity ? 0 : L2 * D1)); // per warp: h [tp][F] (+ f [L2][D1])
    float* fw = hw + tp * F;

    const float* g = g_all + (long long)b * L2 * D2;
    const float* resid = resid_all + (long long)b * L1 * D1;
    const float* gsrc = identity ? g : gs; // layer 1 reads g[b] from shared (mixed) or global (streamed)
    for (int t = threadIdx.x; t < F * D2; t += blockDim.x) { const int k = t / D2, i = t - k * D2; w1s[k * D2p + i] = w1[t]; }
    for (int t = threadIdx.x; t < F; t += blockDim.x) { b1s[t] = b1[t]; scs[t] = bn_scale[t]; shs[t] = bn_shift[t]; }
    for (int t = threadIdx.x; t < D1 * F; t += blockDim.x) { const int d = t / F, k = t - d * F; w2s[d * Fp + k] = w2[t]; }
    for (int t = threadIdx.x; t < D1; t += blockDim.x) b2s[t] = b2[t];
    if (!identity)
    {
        for (int t = threadIdx.x; t < L2 * D2; t += blockDim.x) gs[t] = g[t];
        for (int t = threadIdx.x; t < L1 * D1; t += blockDim.x) rs[t] = resid[t];
        for (int t = threadIdx.x; t < L1 * L2; t += blockDim.x) mixs[t] = mix[t];
        for (int t = threadIdx.x; t < L1 * D1; t += blockDim.x) mbs[t] = mix_bias[t];
    }
    __syncthreads();

    float* dist_row = dist + (long long)b * J;
    const double inv_n = 1.0 / ((double)L1 * D1);
    for (int jj = warp; jj < jc; jj += warps)
    {
        const unsigned word = (unsigned)masks[(long long)b * J + jfirst + jj];
        double s = 0.0; // streamed (identity): this lane's share of sum e^2, tile by tile
        for (int l0 = 0; l0 < L2; l0 += tp)
        {
            const int nt = mvq_min(tp, L2 - l0);
            // Layer 1 with the mask as bits, folded BatchNorm, LeakyReLU: lanes over (token, feature).
            for (int t = lane; t < nt * F; t += 32)
            {
                const int tl = t / F, k = t - tl * F;
                const float* gl = gsrc + (long long)(l0 + tl) * D2;
                const float* wk = w1s + k * D2p;
                float acc = 0.0f;
                for (int i = 0; i < D2; i++)
                    if (hyp_bit(word, i)) acc += gl[i] * wk[i];
                const float a = acc + b1s[k];
                hw[tl * F + k] = hyp_leaky(a * scs[k] + shs[k], slope);
            }
            __syncwarp();
            // Layer 2: lanes over (token, output dim).
            for (int t = lane; t < nt * D1; t += 32)
            {
                const int tl = t / D1, d = t - tl * D1;
                const float* hl = hw + tl * F;
                const float* wd = w2s + d * Fp;
                float acc = 0.0f;
                for (int k = 0; k < F; k++) acc += hl[k] * wd[k];
                const float fv = acc + b2s[d];
                if (identity)
                {
                    const float e = resid[(long long)(l0 + tl) * D1 + d] + fv; // token l0+tl of Y_j - z1
                    s += (double)e * e;
                }
                else fw[(l0 + tl) * D1 + d] = fv;
            }
            __syncwarp();
        }
        // Mixed: token mix onto L1 and the squared distance through the residual, lanes over (l1, d).
        if (!identity)
            for (int t = lane; t < L1 * D1; t += 32)
            {
                const int l = t / D1, d = t - l * D1;
                float m = mbs[t];
                for (int k = 0; k < L2; k++) m += mixs[l * L2 + k] * fw[k * D1 + d];
                const float e = rs[t] + m;
                s += (double)e * e;
            }
        s = hyp_warp_sum_d(s);
        if (lane == 0) dist_row[jfirst + jj] = (float)(s * inv_n);
        __syncwarp(); // fw is rewritten by the next hypothesis
    }
    __syncthreads(); // every distance of the block is in global memory
    if (threadIdx.x == 0) hyp_block_best(dist_row, jfirst, jc, ws, b);
}

// Reference variant helpers: one hidden unit / one output of f, straight from global memory.
static __device__ float hyp_ref_hidden(const float* g, unsigned word, int l, int k, int D2, const float* w1, const float* b1,
    const float* bn_scale, const float* bn_shift, float slope)
{
    float acc = 0.0f;
    for (int i = 0; i < D2; i++)
        if (hyp_bit(word, i)) acc += g[l * D2 + i] * w1[(long long)k * D2 + i];
    const float a = acc + b1[k];
    return hyp_leaky(a * bn_scale[k] + bn_shift[k], slope);
}

static __device__ float hyp_ref_f(const float* g, unsigned word, int l, int d, int D2, int F, const float* w1, const float* b1,
    const float* bn_scale, const float* bn_shift, const float* w2, const float* b2, float slope)
{
    float acc = 0.0f;
    for (int k = 0; k < F; k++) acc += hyp_ref_hidden(g, word, l, k, D2, w1, b1, bn_scale, bn_shift, slope) * w2[(long long)d * F + k];
    return acc + b2[d];
}

extern "C" __global__ void mvq_score_simple(const float* g_all, const float* resid_all, const float* w1, const float* b1,
    const float* bn_scale, const float* bn_shift, const float* w2, const float* b2, const float* mix, const float* mix_bias, const int* masks,
    float* dist, float* ws, int L2, int D2, int J, int F, int D1, int L1, int offset, int count, int identity, int tp, float slope)
{
    (void)tp;
    const int b = blockIdx.y;
    const int jpb = (count + gridDim.x - 1) / gridDim.x;
    const int jfirst = offset + blockIdx.x * jpb;
    const int jc = mvq_min(jpb, offset + count - jfirst);
    const float* g = g_all + (long long)b * L2 * D2;
    const float* resid = resid_all + (long long)b * L1 * D1;
    float* dist_row = dist + (long long)b * J;
    for (int jj = threadIdx.x; jj < jc; jj += blockDim.x)
    {
        const unsigned word = (unsigned)masks[(long long)b * J + jfirst + jj];
        double s = 0.0;
        for (int l = 0; l < L1; l++)
            for (int d = 0; d < D1; d++)
            {
                float e;
                if (identity) e = resid[l * D1 + d] + hyp_ref_f(g, word, l, d, D2, F, w1, b1, bn_scale, bn_shift, w2, b2, slope);
                else
                {
                    float m = mix_bias[l * D1 + d];
                    for (int k = 0; k < L2; k++) m += mix[l * L2 + k] * hyp_ref_f(g, word, k, d, D2, F, w1, b1, bn_scale, bn_shift, w2, b2, slope);
                    e = resid[l * D1 + d] + m;
                }
                s += (double)e * e;
            }
        dist_row[jfirst + jj] = (float)(s / ((double)L1 * D1));
    }
    __syncthreads();
    if (threadIdx.x == 0) hyp_block_best(dist_row, jfirst, jc, ws, b);
}

extern "C" __global__ void mvq_score_finalize(const float* ws, int blocks, int n, int* best_index, float* best_dist)
{
    const int b = (int)mvq_global_index();
    if (b >= n) return;
    const int* wj = (const int*)ws + (long long)blocks * n;
    float bd = best_dist[b]; int bi = best_index[b];
    for (int p = 0; p < blocks; p++)
    {
        const int slot = b * blocks + p;
        if (wj[slot] >= 0 && ws[slot] < bd) { bd = ws[slot]; bi = wj[slot]; }
    }
    best_dist[b] = bd; best_index[b] = bi;
}
