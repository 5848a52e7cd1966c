// vq.cu: fused codebook lookup (vector quantisation).
//   vq_lookup_forward: z[N,D], codebook[K,D] -> idx[N] (int), q[N,D]
//     idx[n] = argmin_k sum_d (z[n,d] - codebook[k,d])^2   (ties -> smallest k)
//     q[n,:] = codebook[idx[n], :]
//   One thread per row of z, VQ_ROWS rows per block. The codebook is streamed through shared
//   memory in tiles of VQ_TILE_CODES codes x `chunk` dims (dynamic shared memory of
//   VQ_TILE_CODES * chunk floats), each thread keeping VQ_TILE_CODES partial distances in
//   registers, so the N x K distance matrix never exists in memory. The exact squared
//   difference (not |c|^2 - 2 z.c) keeps distances accurate and never negative.
//   Gradient: none through the argmin; the straight-through / commitment / codebook gradients
//   are separate ops. Requires blockDim.x == VQ_ROWS. NaN distances never win; a row whose
//   distances are all NaN or above FLT_MAX gets index 0.
//
//   vq_backward_dz: dz = dq + commit (z - q) over N*D elements, commit = s beta 2/(N D) (written).
//   vq_backward_codebook (gradient mode): dcodebook[k,:] += g sum_{i: idx_i = k} (q_i - z_i),
//     g = s 2/(N D). One block per code k owns row k: the block stages idx through shared
//     memory in tiles of VQ_SCAN and each thread (one dim e) adds the matching rows in row
//     order, in double. No atomics; cost O(K N) index compares (cheap next to the lookup's
//     O(K N D)); out-of-range indices match no code.
//   vq_ema_accumulate: per code k (one block per code, same scan): count_k, sum_k = sum z_i;
//     clusterSize[k] = decay cs + (1-decay) count_k; embedSum[k,:] = decay es + (1-decay) sum_k.
//   vq_ema_total: one block: total[0] = sum_k clusterSize[k] (double, fixed tree).
//   vq_ema_codebook: codebook[k,e] = embedSum[k,e] / n_k, n_k = (cs_k + eps)/(total + K eps) total.
//   code_histogram_count: hist[idx_i] += 1 with integer atomics (exact: the result does not
//     depend on their order); indices outside [0, K) are skipped.
//   code_histogram_add: counts[k] += (float)hist[k] (accumulated once per code).
//   vq_loss uses loss_partial/loss_finalize (loss.cu): mean((z - q)^2).
#include "common.cuh"

#define VQ_ROWS 128
#define VQ_TILE_CODES 16

extern "C" __global__ void vq_lookup_forward(const float* z, const float* codebook, int* idx, float* q, int n, int k, int d, int chunk)
{
    extern __shared__ float tile[]; // [VQ_TILE_CODES][chunk]
    __shared__ int row_code[VQ_ROWS];

    const long long row0 = (long long)blockIdx.x * VQ_ROWS;
    const long long row = row0 + threadIdx.x;
    const bool active = row < n;
    const float* zr = z + (active ? row : 0) * (long long)d;

    float best = MVQ_FLT_MAX;
    int best_k = 0;
    for (int k0 = 0; k0 < k; k0 += VQ_TILE_CODES)
    {
        const int kt = mvq_min(VQ_TILE_CODES, k - k0);
        float acc[VQ_TILE_CODES];
#pragma unroll
        for (int j = 0; j < VQ_TILE_CODES; j++) acc[j] = 0.0f;

        for (int d0 = 0; d0 < d; d0 += chunk)
        {
            const int dt = mvq_min(chunk, d - d0);
            __syncthreads(); // the previous tile has been read by every thread
            for (int t = threadIdx.x; t < VQ_TILE_CODES * dt; t += blockDim.x)
            {
                const int j = t / dt, e = t - j * dt;
                tile[j * chunk + e] = j < kt ? codebook[(long long)(k0 + j) * d + d0 + e] : 0.0f;
            }
            __syncthreads();
            if (active)
            {
                for (int e = 0; e < dt; e++)
                {
                    const float zv = zr[d0 + e];
#pragma unroll
                    for (int j = 0; j < VQ_TILE_CODES; j++)
                    {
                        const float diff = zv - tile[j * chunk + e];
                        acc[j] += diff * diff;
                    }
                }
            }
        }
        for (int j = 0; j < kt; j++)
            if (acc[j] < best) { best = acc[j]; best_k = k0 + j; }
    }

    if (active) idx[row] = best_k;
    row_code[threadIdx.x] = best_k;
    __syncthreads();

    // Gather the chosen codes cooperatively so that the writes to q are coalesced.
    const long long rows = mvq_min((long long)VQ_ROWS, (long long)n - row0);
    for (long long t = threadIdx.x; t < rows * d; t += blockDim.x)
    {
        const long long r = t / d, e = t - r * d;
        q[(row0 + r) * d + e] = codebook[(long long)row_code[r] * d + e];
    }
}

#define VQ_SCAN 256

extern "C" __global__ void vq_backward_dz(const float* z, const float* q, const float* dq, float* dz, long long total, float commit)
{
    for (long long i = mvq_global_index(); i < total; i += mvq_grid_stride()) dz[i] = dq[i] + commit * (z[i] - q[i]);
}

extern "C" __global__ void vq_backward_codebook(const float* z, const float* q, const int* idx, float* dcodebook, int n, int d, float g)
{
    __shared__ int tile[VQ_SCAN];
    const int code = blockIdx.x;
    for (int e0 = 0; e0 < d; e0 += blockDim.x)
    {
        const int e = e0 + threadIdx.x;
        double acc = 0.0;
        for (int i0 = 0; i0 < n; i0 += VQ_SCAN)
        {
            const int cnt = mvq_min(VQ_SCAN, n - i0);
            __syncthreads();
            for (int t = threadIdx.x; t < cnt; t += blockDim.x) tile[t] = idx[i0 + t];
            __syncthreads();
            if (e < d)
                for (int j = 0; j < cnt; j++)
                    if (tile[j] == code)
                    {
                        const long long o = (long long)(i0 + j) * d + e;
                        acc += (double)q[o] - z[o];
                    }
        }
        if (e < d) dcodebook[(long long)code * d + e] += (float)(g * acc);
    }
}

extern "C" __global__ void vq_ema_accumulate(const float* z, const int* idx, float* cluster, float* embed, int n, int d, float decay)
{
    __shared__ int tile[VQ_SCAN];
    const int code = blockIdx.x;
    const double keep = 1.0 - (double)decay;
    for (int e0 = 0; e0 < d; e0 += blockDim.x)
    {
        const int e = e0 + threadIdx.x;
        double acc = 0.0;
        int count = 0;
        for (int i0 = 0; i0 < n; i0 += VQ_SCAN)
        {
            const int cnt = mvq_min(VQ_SCAN, n - i0);
            __syncthreads();
            for (int t = threadIdx.x; t < cnt; t += blockDim.x) tile[t] = idx[i0 + t];
            __syncthreads();
            for (int j = 0; j < cnt; j++)
                if (tile[j] == code)
                {
                    count++;
                    if (e < d) acc += z[(long long)(i0 + j) * d + e];
                }
        }
        if (e < d)
        {
            const long long o = (long long)code * d + e;
            embed[o] = (float)((double)decay * embed[o] + keep * acc);
        }
        if (e0 == 0 && threadIdx.x == 0) cluster[code] = (float)((double)decay * cluster[code] + keep * count);
    }
}

extern "C" __global__ void vq_ema_total(const float* cluster, int k, double* total)
{
    __shared__ double warp_sums[32];
    double acc = 0.0;
    for (int i = threadIdx.x; i < k; i += blockDim.x) acc += cluster[i];
    acc = mvq_block_sum_d(acc, warp_sums);
    if (threadIdx.x == 0) total[0] = acc;
}

extern "C" __global__ void vq_ema_codebook(const float* cluster, const float* embed, float* codebook, const double* total, int k, int d, float eps)
{
    const double tot = total[0], denom = tot + (double)k * eps;
    const long long all = (long long)k * d;
    for (long long i = mvq_global_index(); i < all; i += mvq_grid_stride())
    {
        const long long code = i / d;
        const double nk = ((double)cluster[code] + eps) / denom * tot;
        codebook[i] = (float)(embed[i] / nk);
    }
}

extern "C" __global__ void code_histogram_count(const int* idx, int n, int k, unsigned int* hist)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
    {
        const int code = idx[i];
        if ((unsigned)code < (unsigned)k) atomicAdd(hist + code, 1u);
    }
}

extern "C" __global__ void code_histogram_add(const unsigned int* hist, float* counts, int k)
{
    for (long long i = mvq_global_index(); i < k; i += mvq_grid_stride())
        if (hist[i] != 0u) counts[i] += (float)hist[i];
}
