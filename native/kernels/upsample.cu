// upsample.cu: nearest-neighbour 2x upsampling of NCHW images (planes = B*C).
//   upsample_nearest2x_forward:  x[planes,H,W] -> y[planes,2H,2W], y[p,i,j] = x[p,i/2,j/2]
//     one thread per output element (coalesced writes).
//   upsample_nearest2x_backward: dy[planes,2H,2W] -> dx[planes,H,W] (written, not accumulated),
//     dx[p,i,j] = (dy[2i,2j] + dy[2i,2j+1]) + (dy[2i+1,2j] + dy[2i+1,2j+1])
//     one thread per dx element gathers its 2x2 block: no atomics, a fixed summation order.
#include "common.cuh"

extern "C" __global__ void upsample_nearest2x_forward(const float* x, float* y, int planes, int h, int w)
{
    const int w2 = 2 * w, h2 = 2 * h;
    const long long total = (long long)planes * h2 * w2;
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const long long row = t / w2;
        const int j = (int)(t - row * w2);
        const long long p = row / h2;
        const int i = (int)(row - p * h2);
        y[t] = x[(p * h + (i >> 1)) * w + (j >> 1)];
    }
}

extern "C" __global__ void upsample_nearest2x_backward(const float* dy, float* dx, int planes, int h, int w)
{
    const int w2 = 2 * w;
    const long long total = (long long)planes * h * w;
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const long long row = t / w;
        const int j = (int)(t - row * w);
        const long long p = row / h;
        const int i = (int)(row - p * h);
        const float* top = dy + ((p * 2 * h) + 2 * i) * w2 + 2 * j;
        const float* bottom = top + w2;
        dx[t] = (top[0] + top[1]) + (bottom[0] + bottom[1]);
    }
}
