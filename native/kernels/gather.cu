// gather.cu: row gather (decoding codes into codebook rows).
//   gather_rows_forward: table[K,D], idx[N] (int) -> y[N,D], y[n,:] = table[idx[n],:]
//     One thread per output element (grid-stride over N*D, so reads of a row are coalesced).
//     An index outside [0, K) cannot throw on the device: its row is written as NaN so the
//     error shows in the result instead of reading out of bounds (the CPU op throws).
//   No reduction, nothing accumulated; no backward kernel (the op has none).
#include "common.cuh"

extern "C" __global__ void gather_rows_forward(const float* table, const int* idx, float* y, int n, int d, int k)
{
    const long long total = (long long)n * d;
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const long long r = t / d, e = t - r * d;
        const int i = idx[r];
        y[t] = (unsigned)i < (unsigned)k ? table[(long long)i * d + e] : mvq_nan();
    }
}
