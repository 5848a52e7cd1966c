// activation.cu: pointwise activations, forward and backward (any shape, n elements); GELU (tanh) at the end.
//   kind: 0 relu, 1 leaky relu (slope), 2 silu, 3 sigmoid  (= MvqNative.Ops.ActivationKind)
//   activation_forward:  y = f(x)
//     relu(x) = max(x, 0); leaky(x) = x > 0 ? x : slope x; silu(x) = x sigmoid(x);
//     sigmoid(x) = 1 / (1 + exp(-x))
//   activation_backward: dx = dy * f'(x)   (from x, not y; dx written, not accumulated)
//     relu' = x > 0; leaky' = x > 0 ? 1 : slope; silu' = s (1 + x (1 - s)); sigmoid' = s (1 - s)
#include "common.cuh"

static __device__ __forceinline__ float mvq_act(int kind, float slope, float x)
{
    switch (kind)
    {
        case 0: return x > 0.0f ? x : 0.0f;
        case 1: return x > 0.0f ? x : slope * x;
        case 2: return x / (1.0f + expf(-x));
        default: return mvq_sigmoid(x);
    }
}

static __device__ __forceinline__ float mvq_act_grad(int kind, float slope, float x)
{
    switch (kind)
    {
        case 0: return x > 0.0f ? 1.0f : 0.0f;
        case 1: return x > 0.0f ? 1.0f : slope;
        case 2: { float s = mvq_sigmoid(x); return s * (1.0f + x * (1.0f - s)); }
        default: { float s = mvq_sigmoid(x); return s * (1.0f - s); }
    }
}

extern "C" __global__ void activation_forward(const float* x, float* y, int n, int kind, float slope)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride()) y[i] = mvq_act(kind, slope, x[i]);
}

extern "C" __global__ void activation_backward(const float* x, const float* dy, float* dx, int n, int kind, float slope)
{
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride()) dx[i] = dy[i] * mvq_act_grad(kind, slope, x[i]);
}

// GELU, tanh approximation (PyTorch's GELU(approximate='tanh')), any shape, n elements:
//   gelu_forward:  y = 0.5 x (1 + t), t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3)
//   gelu_backward: dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2))   (written)
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
