// embedding.cu: token / position embedding lookup and its deterministic backward.
//   ids[N] (int), table[V, C], y[N, C], dy[N, C], dtable[V, C].
//   embedding_forward:  y[n, c] = table[ids[n], c]   (written; a NaN row when ids[n] is outside [0, V)).
//     Grid-stride over N*C elements.
//   embedding_backward: dtable[v, c] += sum_{n : ids[n] = v} dy[n, c]   (accumulated).
//     Gradient rule of a gather: scatter-add. No atomics: a block owns vocabulary rows v (grid-stride
//     over V) and a thread owns a column c; the ids are staged through shared memory in tiles of
//     blockDim.x, and each thread adds the matching rows of dy in increasing n, then adds its sum to
//     dtable once. O(V N) id compares (broadcast from shared memory) next to the O(N C) adds.
//     Out-of-range ids match no row (skipped). blockDim.x <= 256.
#include "common.cuh"

extern "C" __global__ void embedding_forward(const int* ids, const float* table, float* y, int n, int c, int v)
{
    const long long total = (long long)n * c;
    for (long long i = mvq_global_index(); i < total; i += mvq_grid_stride())
    {
        const int row = (int)(i / c), col = (int)(i % c);
        const int id = ids[row];
        y[i] = (id >= 0 && id < v) ? table[(long long)id * c + col] : mvq_nan();
    }
}

extern "C" __global__ void embedding_backward(const int* ids, const float* dy, float* dtable, int n, int c, int v)
{
    __shared__ int tile[256];
    for (int row = blockIdx.x; row < v; row += gridDim.x)
        for (int c0 = 0; c0 < c; c0 += blockDim.x)
        {
            const int col = c0 + threadIdx.x;
            float acc = 0.0f;
            for (int n0 = 0; n0 < n; n0 += blockDim.x)
            {
                __syncthreads(); // the previous tile is no longer read
                if (n0 + (int)threadIdx.x < n) tile[threadIdx.x] = ids[n0 + threadIdx.x];
                __syncthreads();
                const int m = mvq_min((int)blockDim.x, n - n0);
                if (col < c)
                    for (int k = 0; k < m; k++)
                        if (tile[k] == row) acc += dy[(long long)(n0 + k) * c + col];
            }
            if (col < c) dtable[(long long)row * c + col] += acc;
        }
}
