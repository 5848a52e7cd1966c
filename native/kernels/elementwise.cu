// elementwise.cu: elementwise arithmetic over equal-length float arrays (any shape, n elements).
//   add_forward:   y[i] = a[i] + b[i]
//   axpby_forward: y[i] = alpha * a[i] + beta * b[i]
// No backward kernels: the gradient of a (weighted) sum is routed by the caller
// (da = dy, db = dy for add; da = alpha dy, db = beta dy for axpby).
//   channel_broadcast: v[channels] -> y[outer, channels, inner], y[(b*channels + c)*inner + q] = v[c]
//     (bias initialisation of conv2d / linear outputs before a GEMM with beta = 1).
// y may alias a or b (each element is read before it is written by the same thread).
#include "common.cuh"

extern "C" __global__ void add_forward(const float* a, const float* b, float* y, int n)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride()) y[i] = a[i] + b[i];
}

extern "C" __global__ void axpby_forward(const float* a, const float* b, float* y, float alpha, float beta, int n)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride()) y[i] = alpha * a[i] + beta * b[i];
}

extern "C" __global__ void channel_broadcast(const float* v, float* y, int outer, int channels, int inner)
{
    const long long total = (long long)outer * channels * inner;
    for (long long i = mvq_global_index(); i < total; i += mvq_grid_stride()) y[i] = v[(i / inner) % channels];
}
