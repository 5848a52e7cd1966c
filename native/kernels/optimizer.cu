// optimizer.cu: the AdamW step (PyTorch semantics, clip_grad_norm_ folded in).
//   Per element: g = clip grad; p *= decay_mul; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   p -= step_size m / (sqrt(v)/bc2_sqrt + eps), with decay_mul = 1 - lr wd (1 without decay),
//   step_size = lr/(1 - b1^t), bc2_sqrt = sqrt(1 - b2^t) (computed on the host per step) and
//   clip = min(1, clip_norm/(sqrt(gns) + 1e-6)) read from the device scalar gns (clip_norm <= 0:
//   1), so a step never waits for the host. h = (beta1, beta2, eps, clip_norm).
//   adamw_step: one tensor, grid-stride (the per-parameter op; CPU parity and conformance).
//   adamw_multi (one launch each over a whole parameter list; the AdamW optimiser's step):
//     table[6 T] (u64): per tensor {param, grad, m, v, count, decay flag};
//     chunks[C] (int2): {tensor, start}: block b owns elements [start, start + ADAMW_CHUNK) of
//     its tensor (uploaded by the launcher when the list changes, not per step).
//     adamw_multi_norm: block b writes partial[b] = sum of grad^2 over its chunk (block tree),
//       then takes a ticket from an integer counter (atomicInc, wraps back to 0 for the next
//       step); the last block sums partial[0..C) in index order and writes gns[0] (=). Float
//       order depends only on the chunk table: deterministic (the ticket only picks which
//       block does the final sum).
//     adamw_multi_step: block b updates its chunk as adamw_step does.
#include "common.cuh"

#define ADAMW_CHUNK 4096

static __device__ __forceinline__ float mvq_clip(const float* gns, float clip_norm)
{
    if (clip_norm <= 0.0f) return 1.0f;
    return (float)mvq_mind(1.0, (double)clip_norm / (sqrt(mvq_maxd(0.0, (double)gns[0])) + 1e-6));
}

static __device__ __forceinline__ void mvq_adamw(float* p, float* m, float* v, float g, float4 h, float decay_mul, float step_size, float bc2_sqrt)
{
    const float mi = h.x * *m + (1.0f - h.x) * g;
    const float vi = h.y * *v + (1.0f - h.y) * g * g;
    *m = mi; *v = vi;
    const float pi = *p * decay_mul;
    *p = pi - step_size * mi / (sqrtf(vi) / bc2_sqrt + h.z);
}

extern "C" __global__ void adamw_step(const float* grad, const float* gns, float* p, float* m, float* v, int n, float4 h, float decay_mul, float step_size, float bc2_sqrt)
{
    const float clip = mvq_clip(gns, h.w);
    for (long long i = mvq_global_index(); i < n; i += mvq_grid_stride())
        mvq_adamw(p + i, m + i, v + i, grad[i] * clip, h, decay_mul, step_size, bc2_sqrt);
}

extern "C" __global__ void adamw_multi_norm(const unsigned long long* table, const int2* chunks, float* partial, unsigned int* counter, float* gns)
{
    __shared__ float warp_sums[32];
    __shared__ int is_last;
    const int2 ck = chunks[blockIdx.x];
    const unsigned long long* e = table + 6LL * ck.x;
    const float* grad = (const float*)e[1];
    const long long count = (long long)e[4];
    const long long end = mvq_min(count, (long long)ck.y + ADAMW_CHUNK);
    float acc = 0.0f;
    for (long long i = ck.y + threadIdx.x; i < end; i += blockDim.x) { const float gv = grad[i]; acc += gv * gv; }
    acc = mvq_block_sum(acc, warp_sums);
    if (threadIdx.x == 0)
    {
        partial[blockIdx.x] = acc;
        __threadfence();
        is_last = atomicInc(counter, gridDim.x - 1) == gridDim.x - 1;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    const volatile float* vp = partial;
    float total = 0.0f;
    for (int i = threadIdx.x; i < (int)gridDim.x; i += blockDim.x) total += vp[i];
    __syncthreads(); // warp_sums is reused
    total = mvq_block_sum(total, warp_sums);
    if (threadIdx.x == 0) gns[0] = total;
}

// One block's chunk of adamw_multi_step / adamw_multi_sched: table row ck.x, elements ck.y .. ck.y + ADAMW_CHUNK.
static __device__ __forceinline__ void mvq_adamw_chunk(const unsigned long long* table, const int2* chunks, const float* gns, float4 h,
                                                       float step_size, float bc2_sqrt, float decay_mul)
{
    const int2 ck = chunks[blockIdx.x];
    const unsigned long long* e = table + 6LL * ck.x;
    float* p = (float*)e[0];
    const float* grad = (const float*)e[1];
    float* m = (float*)e[2];
    float* v = (float*)e[3];
    const long long count = (long long)e[4];
    const float dm = e[5] != 0ull ? decay_mul : 1.0f;
    const float clip = mvq_clip(gns, h.w);
    const long long end = mvq_min(count, (long long)ck.y + ADAMW_CHUNK);
    for (long long i = ck.y + threadIdx.x; i < end; i += blockDim.x)
        mvq_adamw(p + i, m + i, v + i, grad[i] * clip, h, dm, step_size, bc2_sqrt);
}

extern "C" __global__ void adamw_multi_step(const unsigned long long* table, const int2* chunks, const float* gns, float4 h, float step_size, float bc2_sqrt, float decay_mul)
{
    mvq_adamw_chunk(table, chunks, gns, h, step_size, bc2_sqrt, decay_mul);
}

// adamw_multi_sched: adamw_multi_step with the per-step scalars read on the device, so that the launch
// is the same every step (a CUDA graph replays it): row = state[0] - state[1] (device_step.cu's
// step counter) of sched [rows, 3] = {step_size, bc2_sqrt, decay_mul}, computed on the host once
// for the run (AdamWScalars of each step's lr and bias-correction step, bit for bit what the
// eager path passes). A row outside the table traps (the host refills the table before that).
extern "C" __global__ void adamw_multi_sched(const unsigned long long* table, const int2* chunks, const float* gns, float4 h,
                                             const float* sched, const long long* state, int rows)
{
    const long long row = state[0] - state[1];
    if (row < 0 || row >= rows) __trap();
    mvq_adamw_chunk(table, chunks, gns, h, sched[3 * row], sched[3 * row + 1], sched[3 * row + 2]);
}
