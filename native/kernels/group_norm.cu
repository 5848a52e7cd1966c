// group_norm.cu: group normalisation. x[B, C, S] (S = product of the spatial dims, maybe 1),
// G groups of Cg = C/G channels; a (sample, group) slice is contiguous: n = Cg*S elements.
//   group_norm_forward: one block per (b, g) (grid B*G). Two passes in double (sum, then the
//     sum of squared deviations from the mean: no cancellation), block tree reductions;
//     mean[bg] = m, rstd[bg] = 1/sqrt(var + eps) (biased var);
//     y = (x - mf) * (r gamma) + (beta - (m - mf) r gamma), mf = float(m): the part of the
//     mean that float rounding drops is carried by the shift, as on the CPU.
//   group_norm_backward: one block per (b, g); xhat = (x - m) r with the stored float m, r.
//     Per channel c of the group, block sums (double) sdy = sum_s dy, sdx = r sum_s dy (x - m),
//     written to part[0][b*C + c] and part[1][b*C + c]; then
//     c1 = sum_c gamma_c sdy_c / n, c2 = r sum_c gamma_c sdx_c / n,
//     dx = r (gamma dy - c1 - (x - m) c2)   (written).
//     dbeta += column sums of part[0] over b, dgamma += those of part[1]: done by
//     column_sum_accumulate (reduce.cu), one owner per channel, fixed order. No atomics.
#include "common.cuh"

extern "C" __global__ void group_norm_forward(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd, int groups, int channels, int spatial, float eps)
{
    __shared__ double warp_sums[32];
    __shared__ double stat[2];
    const int bg = blockIdx.x, g = bg % groups, cg = channels / groups;
    const long long n = (long long)cg * spatial;
    const float* xs = x + bg * n;
    float* ys = y + bg * n;

    double s = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) s += xs[i];
    s = mvq_block_sum_d(s, warp_sums);
    if (threadIdx.x == 0) stat[0] = s / (double)n;
    __syncthreads();
    const double m = stat[0];
    double v = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) { const double d = xs[i] - m; v += d * d; }
    v = mvq_block_sum_d(v, warp_sums);
    if (threadIdx.x == 0)
    {
        stat[1] = 1.0 / sqrt(v / (double)n + (double)eps);
        mean[bg] = (float)m;
        rstd[bg] = (float)stat[1];
    }
    __syncthreads();
    const double r = stat[1];
    const float mf = (float)m;
    for (long long i = threadIdx.x; i < n; i += blockDim.x)
    {
        const int ch = g * cg + (int)(i / spatial);
        const double scale = r * gamma[ch];
        ys[i] = (xs[i] - mf) * (float)scale + (float)(beta[ch] - (m - mf) * scale);
    }
}

extern "C" __global__ void group_norm_backward(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy, float* dx, float* part, int groups, int channels, int spatial)
{
    __shared__ double warp_sums[32];
    __shared__ float coef[2];
    const int bg = blockIdx.x, g = bg % groups, b = bg / groups, cg = channels / groups;
    const long long n = (long long)cg * spatial;
    const long long bc = (long long)(gridDim.x / groups) * channels;
    const float m = mean[bg], r = rstd[bg];
    double sum_gdy = 0.0, sum_gdx = 0.0; // meaningful in thread 0 only

    for (int ci = 0; ci < cg; ci++)
    {
        const int ch = g * cg + ci;
        const long long off = bg * n + (long long)ci * spatial;
        double sdy = 0.0, sdx = 0.0;
        for (int q = threadIdx.x; q < spatial; q += blockDim.x)
        {
            const float d = dy[off + q];
            sdy += d;
            sdx += (double)d * (x[off + q] - m);
        }
        sdy = mvq_block_sum_d(sdy, warp_sums);
        __syncthreads();
        sdx = mvq_block_sum_d(sdx, warp_sums) * (double)r;
        __syncthreads();
        if (threadIdx.x == 0)
        {
            part[(long long)b * channels + ch] = (float)sdy;
            part[bc + (long long)b * channels + ch] = (float)sdx;
            sum_gdy += gamma[ch] * sdy;
            sum_gdx += gamma[ch] * sdx;
        }
    }
    if (threadIdx.x == 0)
    {
        coef[0] = (float)(sum_gdy / (double)n);
        coef[1] = (float)((double)r * sum_gdx / (double)n);
    }
    __syncthreads();
    const float c1 = coef[0], c2 = coef[1];
    for (long long i = threadIdx.x; i < n; i += blockDim.x)
    {
        const long long t = bg * n + i;
        const float gm = gamma[g * cg + (int)(i / spatial)];
        dx[t] = r * (gm * dy[t] - c1 - (x[t] - m) * c2);
    }
}
