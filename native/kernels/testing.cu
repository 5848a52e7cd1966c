// testing.cu: kernels that exist only for tests of the toolchain (never used by ops).
//   testing_oob_write: writes y[n] (one element past the end of an n-element buffer), the
//     planted out-of-bounds write the emulator's guard regions must catch and report by name.
//   testing_iota: y[i] = i (a well-behaved kernel beside it).
#include "common.cuh"

extern "C" __global__ void testing_oob_write(float* y, int n)
{
    if (mvq_global_index() == 0) y[n] = 42.0f;
}

extern "C" __global__ void testing_iota(float* y, int n)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride()) y[i] = (float)i;
}
