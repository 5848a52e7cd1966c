// attention.cu: fused causal multi-head self-attention (training) and single-query attention over a
// KV cache (sampling). Rows are (b, t), row-major; qkv[B*T, 3C] holds q | k | v per row, head h uses
// columns h*hd .. h*hd+hd-1 of each block (hd = C/H), scale = 1/sqrt(hd). One warp per query (or key):
// lane l holds head dimensions l, l+32, ... (hd <= 32 * MVQ_ATT_DIMS, checked by the launcher).
//
//   attention_forward: in qkv, out y[B*T, C], lse[B, H, T]. Warp = (b, h, t). Online softmax over
//     keys j = 0..t: s = scale q_t . k_j (warp sum), m' = max(m, s), acc = acc e^(m - m') + e^(s - m') v_j,
//     l = l e^(m - m') + e^(s - m'); y_t = acc / l, lse_t = m + log l. Nothing of size [T, T] is stored.
//   attention_backward (dq pass): warp = (b, h, t). D_t = dy_t . y_t (written to dsum[B, H, T], read by
//     the dk/dv pass); for j <= t: p = exp(s_tj - lse_t), dp = dy_t . v_j, ds = p (dp - D_t),
//     dq_t = scale sum_j ds k_j (written into the q block of dqkv).
//   attention_backward_dkv: warp = (b, h, j). For t = j..T-1 in increasing order (deterministic):
//     dk_j = scale sum_t ds_tj q_t, dv_j = sum_t p_tj dy_t (written into the k, v blocks of dqkv).
//     Gradient rule: dS = P o (dP - rowsum(dP o P)), dQ = scale dS K, dK = scale dS^T Q, dV = P^T dY.
//   kv_cache_append: kcache[b, pos, :] = qkv[b, C:2C], vcache[b, pos, :] = qkv[b, 2C:3C]; pos is read on
//     the device (nothing written if it is outside [0, Tmax)).
//   attention_decode: warp = (b, h); the q block of qkv[b] against cache rows 0..pos, online softmax;
//     y[b, h*hd ..] written (NaN if pos is outside [0, Tmax)).
#include "common.cuh"

#define MVQ_ATT_DIMS 8

// -infinity without <cmath> (NVRTC has no host headers).
#define MVQ_ATT_NEG_INF __int_as_float(0xff800000)

static __device__ __forceinline__ float mvq_att_allsum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(MVQ_FULL_MASK, v, offset);
    return v;
}

// Dot product of two head rows held by a warp (lane l: dims l, l+32, ...), total in every lane.
static __device__ __forceinline__ float mvq_att_dot(const float* a, const float* b, int hd)
{
    float s = 0.0f;
    for (int d = threadIdx.x & 31; d < hd; d += 32) s += a[d] * b[d];
    return mvq_att_allsum(s);
}

extern "C" __global__ void attention_forward(const float* qkv, float* y, float* lse, int B, int T, int H, int C)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)B * H * T) return; // whole warps leave together
    const int t = (int)(w % T), h = (int)((w / T) % H), b = (int)(w / ((long long)T * H));
    const int hd = C / H, c3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    const float* q = qkv + ((long long)b * T + t) * c3 + h * hd;
    float acc[MVQ_ATT_DIMS];
    for (int k = 0; k < MVQ_ATT_DIMS; k++) acc[k] = 0.0f;
    float m = MVQ_ATT_NEG_INF, l = 0.0f;
    for (int j = 0; j <= t; j++)
    {
        const float* kr = qkv + ((long long)b * T + j) * c3 + C + h * hd;
        const float s = scale * mvq_att_dot(q, kr, hd);
        const float mn = s > m ? s : m;
        const float corr = expf(m - mn), e = expf(s - mn);
        l = l * corr + e;
        for (int k = 0; k < MVQ_ATT_DIMS; k++)
        {
            const int d = lane + 32 * k;
            if (d < hd) acc[k] = acc[k] * corr + e * kr[C + d];
        }
        m = mn;
    }
    float* yr = y + ((long long)b * T + t) * C + h * hd;
    for (int k = 0; k < MVQ_ATT_DIMS; k++)
    {
        const int d = lane + 32 * k;
        if (d < hd) yr[d] = acc[k] / l;
    }
    if (lane == 0) lse[w] = m + logf(l);
}

extern "C" __global__ void attention_backward(const float* qkv, const float* y, const float* lse, const float* dy, float* dqkv, float* dsum, int B, int T, int H, int C)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)B * H * T) return;
    const int t = (int)(w % T), h = (int)((w / T) % H), b = (int)(w / ((long long)T * H));
    const int hd = C / H, c3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    const long long row = (long long)b * T + t;
    const float* q = qkv + row * c3 + h * hd;
    const float* g = dy + row * C + h * hd;
    const float dd = mvq_att_dot(g, y + row * C + h * hd, hd);
    if (lane == 0) dsum[w] = dd;
    const float lt = lse[w];
    float acc[MVQ_ATT_DIMS];
    for (int k = 0; k < MVQ_ATT_DIMS; k++) acc[k] = 0.0f;
    for (int j = 0; j <= t; j++)
    {
        const float* kr = qkv + ((long long)b * T + j) * c3 + C + h * hd;
        const float p = expf(scale * mvq_att_dot(q, kr, hd) - lt);
        const float ds = p * (mvq_att_dot(g, kr + C, hd) - dd);
        for (int k = 0; k < MVQ_ATT_DIMS; k++)
        {
            const int d = lane + 32 * k;
            if (d < hd) acc[k] += ds * kr[d];
        }
    }
    float* dq = dqkv + row * c3 + h * hd;
    for (int k = 0; k < MVQ_ATT_DIMS; k++)
    {
        const int d = lane + 32 * k;
        if (d < hd) dq[d] = scale * acc[k];
    }
}

extern "C" __global__ void attention_backward_dkv(const float* qkv, const float* lse, const float* dy, const float* dsum, float* dqkv, int B, int T, int H, int C)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)B * H * T) return;
    const int j = (int)(w % T), h = (int)((w / T) % H), b = (int)(w / ((long long)T * H));
    const int hd = C / H, c3 = 3 * C;
    const float scale = 1.0f / sqrtf((float)hd);
    const long long krow = (long long)b * T + j;
    const float* kr = qkv + krow * c3 + C + h * hd;
    float dk[MVQ_ATT_DIMS], dv[MVQ_ATT_DIMS];
    for (int k = 0; k < MVQ_ATT_DIMS; k++) { dk[k] = 0.0f; dv[k] = 0.0f; }
    const long long w0 = w - j; // (b, h, t = 0)
    for (int t = j; t < T; t++)
    {
        const long long row = (long long)b * T + t;
        const float* q = qkv + row * c3 + h * hd;
        const float* g = dy + row * C + h * hd;
        const float p = expf(scale * mvq_att_dot(q, kr, hd) - lse[w0 + t]);
        const float ds = p * (mvq_att_dot(g, kr + C, hd) - dsum[w0 + t]);
        for (int k = 0; k < MVQ_ATT_DIMS; k++)
        {
            const int d = lane + 32 * k;
            if (d < hd) { dk[k] += ds * q[d]; dv[k] += p * g[d]; }
        }
    }
    float* dkr = dqkv + krow * c3 + C + h * hd;
    for (int k = 0; k < MVQ_ATT_DIMS; k++)
    {
        const int d = lane + 32 * k;
        if (d < hd) { dkr[d] = scale * dk[k]; dkr[C + d] = dv[k]; }
    }
}

extern "C" __global__ void kv_cache_append(const float* qkv, const int* pos, float* kcache, float* vcache, int B, int Tmax, int C)
{
    const int p = pos[0];
    if (p < 0 || p >= Tmax) return;
    const long long total = (long long)B * C;
    for (long long i = mvq_global_index(); i < total; i += mvq_grid_stride())
    {
        const long long b = i / C, d = i % C;
        kcache[(b * Tmax + p) * C + d] = qkv[b * 3 * C + C + d];
        vcache[(b * Tmax + p) * C + d] = qkv[b * 3 * C + 2 * C + d];
    }
}

extern "C" __global__ void attention_decode(const float* qkv, const float* kcache, const float* vcache, const int* pos, float* y, int B, int Tmax, int H, int C)
{
    const int lane = threadIdx.x & 31;
    const long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (w >= (long long)B * H) return;
    const int h = (int)(w % H), b = (int)(w / H);
    const int hd = C / H, p = pos[0];
    float* yr = y + (long long)b * C + h * hd;
    if (p < 0 || p >= Tmax)
    {
        for (int d = lane; d < hd; d += 32) yr[d] = mvq_nan();
        return;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    const float* q = qkv + (long long)b * 3 * C + h * hd;
    float acc[MVQ_ATT_DIMS];
    for (int k = 0; k < MVQ_ATT_DIMS; k++) acc[k] = 0.0f;
    float m = MVQ_ATT_NEG_INF, l = 0.0f;
    for (int j = 0; j <= p; j++)
    {
        const long long off = ((long long)b * Tmax + j) * C + h * hd;
        const float s = scale * mvq_att_dot(q, kcache + off, hd);
        const float mn = s > m ? s : m;
        const float corr = expf(m - mn), e = expf(s - mn);
        l = l * corr + e;
        for (int k = 0; k < MVQ_ATT_DIMS; k++)
        {
            const int d = lane + 32 * k;
            if (d < hd) acc[k] = acc[k] * corr + e * vcache[off + d];
        }
        m = mn;
    }
    for (int k = 0; k < MVQ_ATT_DIMS; k++)
    {
        const int d = lane + 32 * k;
        if (d < hd) yr[d] = acc[k] / l;
    }
}
