// activation.cu: pointwise activations, forward and backward (any shape, n elements). GELU is its own family: gelu.cu.
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
