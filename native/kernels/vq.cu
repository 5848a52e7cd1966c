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
