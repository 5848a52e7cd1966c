// gelu.cu: GELU, tanh approximation (PyTorch's GELU(approximate='tanh')), any shape, n elements.
// Pointwise: each element is read and written by one thread, nothing is reduced.
//   gelu_forward:  y = 0.5 x (1 + t), t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3)
//   gelu_backward: dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))   (written)
#include "common.cuh"

#define MVQ_GELU_K0 0.7978845608028654f
#define MVQ_GELU_K1 0.044715f

extern "C" __global__ void gelu_forward(const float* x, float* y, int n)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
    {
        const float v = x[i], t = tanhf(MVQ_GELU_K0 * (v + MVQ_GELU_K1 * v * v * v));
        y[i] = 0.5f * v * (1.0f + t);
    }
}

extern "C" __global__ void gelu_backward(const float* x, const float* dy, float* dx, int n)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
    {
        const float v = x[i], t = tanhf(MVQ_GELU_K0 * (v + MVQ_GELU_K1 * v * v * v));
        dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * MVQ_GELU_K0 * (1.0f + 3.0f * MVQ_GELU_K1 * v * v));
    }
}
