// mvq.cu: the simple MVQ bottleneck ops on CUDA (MvqNative/Ops/MvqOps.cs has the semantics and
// shapes). The hypothesis statistics and fused scoring are in mvq_score.cu; token mixing is
// cuBLAS (CudaMvq.cs), so it has no kernel here.
//   mvq_select_words_forward: masks[B,J] (int), index[B] -> words[B] = masks[b, index[b]]
//     An index outside [0, J) gives word 0 and claims the backend's fault word (DeviceFaults.cs:
//     [1, index, instance, J], first fault wins), which the host raises at its next wait.
//   mask_apply_forward: g[B,L,D2], words[B] -> y = bit i of words[b] ? g[b,l,i] : 0 (D2 <= 32).
//   batchnorm_frozen_forward: a[N,F], mean, rstd, gamma, beta [F] -> y = a scale + shift with
//     scale = gamma rstd, shift = beta - mean scale rounded as batchnorm_fold does: the formula of
//     mvq_score, so the winner path computes f the way its hypothesis was scored.
//   batchnorm_frozen_backward: da = dy rstd gamma (=); dgamma[k] += sum_r dy (a - mean) rstd,
//     dbeta[k] += sum_r dy: a block of 256 threads owns 32 columns (8 row phases added in phase
//     order, double), like column_sum_accumulate: no atomics, fixed order.
//   batchnorm_fold: rstd = 1/sqrt(var + eps), scale = gamma rstd, shift = beta - mean scale.
//   batchnorm_running_update: rm = (1-m) rm + m mean, rv = (1-m) rv + m var unbias (in place).
#include "common.cuh"

extern "C" __global__ void mvq_select_words_forward(const int* masks, const int* index, int* words, int b, int j, int* fault)
{
    for (long long i = mvq_global_index(); i < b; i += mvq_grid_stride())
    {
        const int k = index[i];
        if ((unsigned)k < (unsigned)j) { words[i] = masks[i * j + k]; continue; }
        words[i] = 0;
        if (atomicCAS(fault, 0, 1) == 0) { fault[1] = k; fault[2] = (int)i; fault[3] = j; }
    }
}

extern "C" __global__ void mask_apply_forward(const float* g, const int* words, float* y, long long total, int l, int d2)
{
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const long long row = t / d2;
        const int i = (int)(t - row * d2);
        const unsigned w = (unsigned)words[row / l];
        y[t] = ((w >> i) & 1u) != 0u ? g[t] : 0.0f;
    }
}

extern "C" __global__ void batchnorm_frozen_forward(const float* a, const float* mean, const float* rstd, const float* gamma, const float* beta, float* y, long long total, int f)
{
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const int k = (int)(t % f);
        const float scale = __fmul_rn(gamma[k], rstd[k]);
        const float shift = __fadd_rn(beta[k], -__fmul_rn(mean[k], scale));
        y[t] = a[t] * scale + shift;
    }
}

// Requires blockDim.x == 256; grid ceil(f / 32).
extern "C" __global__ void batchnorm_frozen_backward(const float* a, const float* mean, const float* rstd, const float* gamma, const float* dy, float* da, float* dgamma, float* dbeta, int n, int f)
{
    __shared__ double part_g[8][33];
    __shared__ double part_b[8][33];
    const int lane = threadIdx.x & 31, phase = threadIdx.x >> 5;
    const int k = blockIdx.x * 32 + lane;
    double sg = 0.0, sb = 0.0;
    if (k < f)
    {
        const float m = mean[k], r = rstd[k], gm = gamma[k];
        for (long long row = phase; row < n; row += 8)
        {
            const long long t = row * f + k;
            const float d = dy[t];
            da[t] = d * r * gm;
            sg += (double)d * ((a[t] - m) * r);
            sb += d;
        }
    }
    part_g[phase][lane] = sg;
    part_b[phase][lane] = sb;
    __syncthreads();
    if (phase == 0 && k < f)
    {
        double tg = part_g[0][lane], tb = part_b[0][lane];
        for (int p = 1; p < 8; p++) { tg += part_g[p][lane]; tb += part_b[p][lane]; }
        dgamma[k] += (float)tg;
        dbeta[k] += (float)tb;
    }
}

extern "C" __global__ void batchnorm_fold(const float* mean, const float* var, const float* gamma, const float* beta, float* rstd, float* scale, float* shift, int f, float eps)
{
    for (long long k = mvq_global_index(); k < f; k += mvq_grid_stride())
    {
        const float r = (float)(1.0 / sqrt((double)var[k] + (double)eps));
        rstd[k] = r;
        const float s = __fmul_rn(gamma[k], r);
        scale[k] = s;
        shift[k] = __fadd_rn(beta[k], -__fmul_rn(mean[k], s)); // as batchnorm_frozen_forward rounds it
    }
}

extern "C" __global__ void batchnorm_running_update(const float* mean, const float* var, float* rm, float* rv, int f, float momentum, double unbias)
{
    for (long long k = mvq_global_index(); k < f; k += mvq_grid_stride())
    {
        rm[k] = (float)((1.0 - (double)momentum) * rm[k] + (double)momentum * mean[k]);
        rv[k] = (float)((1.0 - (double)momentum) * rv[k] + (double)momentum * (var[k] * unbias));
    }
}
