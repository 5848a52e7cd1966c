// layout.cu: NCHW images <-> token matrices, each the other's backward.
//   nchw_to_tokens_forward: x[B,C,HW] -> t[B,HW,C], t[b,p,c] = x[b,c,p]
//   tokens_to_nchw_forward: t[B,HW,C] -> x[B,C,HW], the inverse
//   Both are a batched transpose of a rows x cols matrix: in[b][rows][cols] -> out[b][cols][rows]
//   (rows = C, cols = HW for nchw_to_tokens; rows = HW, cols = C for tokens_to_nchw).
//   32x32 tiles staged in shared memory (33 columns: no bank conflicts), so both the reads
//   and the writes are coalesced. Block (32, 8); grid (ceil(cols/32), ceil(rows/32), B).
//   Pure data movement: no reductions, outputs written (=).
#include "common.cuh"

#define LAYOUT_TILE 32

static __device__ __forceinline__ void mvq_transpose_tile(const float* in, float* out, int rows, int cols, float (*tile)[LAYOUT_TILE + 1])
{
    const long long plane = (long long)rows * cols;
    in += blockIdx.z * plane;
    out += blockIdx.z * plane;
    const int c0 = blockIdx.x * LAYOUT_TILE, r0 = blockIdx.y * LAYOUT_TILE;
    for (int j = threadIdx.y; j < LAYOUT_TILE; j += blockDim.y)
    {
        const int r = r0 + j, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[j][threadIdx.x] = in[(long long)r * cols + c];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < LAYOUT_TILE; j += blockDim.y)
    {
        const int c = c0 + j, r = r0 + threadIdx.x;
        if (r < rows && c < cols) out[(long long)c * rows + r] = tile[threadIdx.x][j];
    }
}

extern "C" __global__ void nchw_to_tokens_forward(const float* x, float* t, int channels, int pixels)
{
    __shared__ float tile[LAYOUT_TILE][LAYOUT_TILE + 1];
    mvq_transpose_tile(x, t, channels, pixels, tile);
}

extern "C" __global__ void tokens_to_nchw_forward(const float* t, float* x, int channels, int pixels)
{
    __shared__ float tile[LAYOUT_TILE][LAYOUT_TILE + 1];
    mvq_transpose_tile(t, x, pixels, channels, tile);
}
