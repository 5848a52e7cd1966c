// conv.cu: the data-movement halves of conv2d on CUDA (the GEMMs are cuBLAS calls made by
// MvqNative/Backends/Cuda/Kernels/CudaConv.cs; the bias and dw/db sums use channel_broadcast,
// channel_sum_accumulate and column_sum_accumulate).
//   Shapes: x[B,Cin,H,W], w[Cout,Cin,k,k], y[B,Cout,Ho,Wo], Ho = (H + 2P - k)/S + 1;
//   col[n][r][q] with r = (c*k + u)*k + v (Rows = Cin k k) and q = oh*Wo + ow (Pixels = Ho Wo).
//   conv2d_im2col: col[n][r][q] = x[n, c, oh*S - P + u, ow*S - P + v] (0 outside the image),
//     for `images` consecutive images; one thread per col element (coalesced writes).
//   conv2d_col2im: dx[n,c,i,j] = sum over (u,v) with i + P - u = oh*S, j + P - v = ow*S,
//     0 <= oh < Ho, 0 <= ow < Wo, of dcol[n][(c*k+u)*k+v][oh*Wo+ow]. One thread per dx element
//     gathers its taps in (u, v) order: no atomics, a fixed order; dx is written (=).
//   Forward: y_n = w[Cout,Rows] col_n[Rows,Pix] + b; backward: dcol_n = w^T dy_n then col2im,
//   dw += sum_n dy_n col_n^T (per-image GEMMs into scratch, then column_sum_accumulate over
//   images in order), db += sum over (n, q) of dy (channel_sum_accumulate).
#include "common.cuh"

extern "C" __global__ void conv2d_im2col(const float* x, float* col, int images, int cin, int h, int w, int k, int s, int p)
{
    const int ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
    const long long pix = (long long)ho * wo, rows = (long long)cin * k * k;
    const long long total = images * rows * pix;
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const long long nr = t / pix;
        const int q = (int)(t - nr * pix);
        const long long n = nr / rows;
        const int r = (int)(nr - n * rows);
        const int c = r / (k * k), uv = r - c * k * k, u = uv / k, v = uv - u * k;
        const int oh = q / wo, ow = q - oh * wo;
        const int ih = oh * s - p + u, iw = ow * s - p + v;
        col[t] = (ih >= 0 && ih < h && iw >= 0 && iw < w) ? x[((n * cin + c) * h + ih) * w + iw] : 0.0f;
    }
}

extern "C" __global__ void conv2d_col2im(const float* col, float* dx, int images, int cin, int h, int w, int k, int s, int p)
{
    const int ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
    const long long pix = (long long)ho * wo, rows = (long long)cin * k * k;
    const long long total = (long long)images * cin * h * w;
    for (long long t = mvq_global_index(); t < total; t += mvq_grid_stride())
    {
        const long long nci = t / w;
        const int j = (int)(t - nci * w);
        const long long nc = nci / h;
        const int i = (int)(nci - nc * h);
        const long long n = nc / cin;
        const int c = (int)(nc - n * cin);
        const float* cn = col + (n * rows + (long long)c * k * k) * pix;
        float acc = 0.0f;
        for (int u = 0; u < k; u++)
        {
            const int th = i + p - u;
            if (th < 0 || th % s != 0) continue;
            const int oh = th / s;
            if (oh >= ho) continue;
            for (int v = 0; v < k; v++)
            {
                const int tw = j + p - v;
                if (tw < 0 || tw % s != 0) continue;
                const int ow = tw / s;
                if (ow >= wo) continue;
                acc += cn[(long long)(u * k + v) * pix + oh * wo + ow];
            }
        }
        dx[t] = acc;
    }
}
