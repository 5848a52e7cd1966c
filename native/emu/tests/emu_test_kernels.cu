// emu_test_kernels.cu: kernels that exercise the emulator (block barriers with static shared
// memory, warp shuffles and votes, atomics, 3-D grids, dynamic shared memory, packed
// parameters, and deliberate faults: out-of-bounds write, deadlock, trap). Valid CUDA C for
// NVRTC too (the nvrtc test compiles this file), so nothing here may need host headers.
#ifdef MVQ_EMU
#include "cuda_emu.h"
#else
// NVRTC has no host headers: <math.h>/<float.h> constants come from builtins.
#define INFINITY __int_as_float(0x7f800000)
#define FLT_MAX 3.402823466e+38f
#endif

// Sum of x[0..n) per block into out[blockIdx.x]: tree reduction in static shared memory.
extern "C" __global__ void emu_block_sum(const float* __restrict__ x, float* __restrict__ out, int n) {
    __shared__ float tile[256];
    unsigned t = threadIdx.x;
    unsigned i = blockIdx.x * blockDim.x + t;
    tile[t] = i < (unsigned)n ? x[i] : 0.0f;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) tile[t] += tile[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = tile[0];
}

// Per-warp sums with __shfl_down_sync and __shfl_xor_sync (both must agree).
extern "C" __global__ void emu_warp_sum(const float* x, float* down, float* xorsum, int n) {
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = i < (unsigned)n ? x[i] : 0.0f;
    float a = v, b = v;
    for (int o = 16; o > 0; o >>= 1) a += __shfl_down_sync(0xffffffffu, a, o);
    for (int o = 16; o > 0; o >>= 1) b += __shfl_xor_sync(0xffffffffu, b, o);
    unsigned warp = i / 32;
    if ((threadIdx.x & 31) == 0) down[warp] = a;
    xorsum[i] = b;  // every lane holds the full warp sum after a butterfly
}

// Inclusive prefix sum per warp with __shfl_up_sync; broadcast of lane 5 with __shfl_sync;
// a width-16 rotation; a double shuffle.
extern "C" __global__ void emu_warp_scan(const int* x, int* scan, int* bcast, int* rot16, double* dbl) {
    unsigned lane = threadIdx.x & 31;
    int v = x[threadIdx.x];
    for (int o = 1; o < 32; o <<= 1) {
        int u = __shfl_up_sync(0xffffffffu, v, o);
        if ((int)lane >= o) v += u;
    }
    scan[threadIdx.x] = v;
    bcast[threadIdx.x] = __shfl_sync(0xffffffffu, x[threadIdx.x], 5);
    rot16[threadIdx.x] = __shfl_sync(0xffffffffu, x[threadIdx.x], (int)(lane + 1), 16);
    dbl[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (double)x[threadIdx.x] + 0.5, 1);
}

// Votes: ballot of x > 0, all and any, and __syncthreads_count over the block.
extern "C" __global__ void emu_votes(const int* x, unsigned* ballot, int* all, int* any, int* count) {
    int p = x[threadIdx.x] > 0;
    unsigned b = __ballot_sync(0xffffffffu, p);
    int a = __all_sync(0xffffffffu, p);
    int y = __any_sync(0xffffffffu, p);
    int c = __syncthreads_count(p);
    unsigned w = threadIdx.x / 32;
    if ((threadIdx.x & 31) == 0) {
        ballot[w] = b;
        all[w] = a;
        any[w] = y;
    }
    if (threadIdx.x == 0) count[0] = c;
}

// Atomics across blocks: integer histogram, float sum, max, min, CAS counter, exchange.
extern "C" __global__ void emu_atomics(const int* x, int n, int* hist, float* fsum, int* imax, int* imin, unsigned* cas,
                                       int* exch) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(&hist[x[i] & 7], 1);
    atomicAdd(fsum, 0.5f);
    atomicMax(imax, x[i]);
    atomicMin(imin, x[i]);
    unsigned old = *cas, seen;
    while ((seen = atomicCAS(cas, old, old + 1u)) != old) old = seen;
    atomicExch(exch, 7);
}

// 3-D grid and block: each thread writes its global linear index at its 3-D position.
extern "C" __global__ void emu_grid3d(unsigned* out, unsigned nx, unsigned ny, unsigned nz) {
    unsigned x = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned y = blockIdx.y * blockDim.y + threadIdx.y;
    unsigned z = blockIdx.z * blockDim.z + threadIdx.z;
    if (x >= nx || y >= ny || z >= nz) return;
    unsigned blockLinear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned threadLinear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[x + nx * (y + ny * z)] = blockLinear * (blockDim.x * blockDim.y * blockDim.z) + threadLinear;
}

// Reverses each block's chunk through dynamic shared memory (size = blockDim.x floats).
extern "C" __global__ void emu_dyn_reverse(const float* x, float* y) {
    extern __shared__ float dyn_buf[];
    unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
    dyn_buf[t] = x[base + t];
    __syncthreads();
    y[base + t] = dyn_buf[blockDim.x - 1 - t];
}

// Packed-argument layout check: mixed sizes and alignments.
extern "C" __global__ void emu_mixed_args(char c, double d, int i, float* out, short s, long long ll) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        out[0] = (float)c;
        out[1] = (float)d;
        out[2] = (float)i;
        out[3] = (float)s;
        out[4] = (float)ll;
    }
}

// Deliberate bug: writes one element past the end (index n) from the last thread.
extern "C" __global__ void emu_oob_write(float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 1.0f;
    if (i == n - 1) y[n + 3] = 42.0f;
}

// Deliberate bug: thread 0 waits at a warp shuffle, the others at __syncthreads.
extern "C" __global__ void emu_deadlock(int* out) {
    if (threadIdx.x == 0)
        out[0] = __shfl_sync(0xffffffffu, 1, 0);
    else
        __syncthreads();
}

// Deliberate fault: traps when it sees a negative value.
extern "C" __global__ void emu_trap_negative(const float* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && x[i] < 0.0f) __trap();
}

// Tiled matrix multiply C[m,n] = A[m,k] B[k,n] (row-major) with a 2-D block and two shared
// tiles: many barriers per block, used to check results and barrier cost.
extern "C" __global__ void emu_tiled_matmul(const float* A, const float* B, float* C, int m, int n, int k) {
    __shared__ float As[16][16];
    __shared__ float Bs[16][16];
    int row = blockIdx.y * 16 + threadIdx.y, col = blockIdx.x * 16 + threadIdx.x;
    float acc = 0.0f;
    for (int t0 = 0; t0 < k; t0 += 16) {
        As[threadIdx.y][threadIdx.x] = row < m && t0 + (int)threadIdx.x < k ? A[row * k + t0 + threadIdx.x] : 0.0f;
        Bs[threadIdx.y][threadIdx.x] = col < n && t0 + (int)threadIdx.y < k ? B[(t0 + threadIdx.y) * n + col] : 0.0f;
        __syncthreads();
        for (int q = 0; q < 16; ++q) acc = fmaf(As[threadIdx.y][q], Bs[q][threadIdx.x], acc);
        __syncthreads();
    }
    if (row < m && col < n) C[row * n + col] = acc;
}

// Math intrinsics in one place (compared against the host's libm by the test).
extern "C" __global__ void emu_math(const float* x, float* y) {
    float v = x[threadIdx.x];
    float r = expf(v) + logf(fabsf(v) + 1.0f) + sqrtf(fabsf(v)) + rsqrtf(fabsf(v) + 1.0f) + __expf(-v) +
              __fdividef(v, 3.0f) + fmaxf(v, 0.0f) + fminf(v, 0.0f) + fmaf(v, 2.0f, 1.0f) + copysignf(1.0f, v) + tanhf(v) +
              __int_as_float(__float_as_int(v)) + __ldg(&x[threadIdx.x]);
    y[threadIdx.x] = v > 1e30f ? INFINITY : (r < -FLT_MAX ? 0.0f : r) + (float)(warpSize - 32);
}

// ---- sanitizer faults: each kernel commits exactly one (emu_sanitizer_tests.cpp) ----------------

// memcheck: reads x[n] (one past the end) when `extra` is set; never writes out of bounds.
extern "C" __global__ void emu_oob_read(const float* x, float* y, int n, int extra) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n + extra) y[i < n ? i : 0] = x[i];
}

// memcheck: y has n floats; writes y[i] for i < limit (limit > n writes into the bytes that
// follow, e.g. the next sub-region of the same allocation).
extern "C" __global__ void emu_write_upto(float* y, int limit) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < limit) y[i] = (float)i;
}

// memcheck: a 4-byte load from an address that is not 4-byte aligned.
extern "C" __global__ void emu_misaligned(const char* x, float* y, int offset) {
    if (threadIdx.x == 0) y[0] = *(const float*)(x + offset);
}

// initcheck: reads x (the test never writes it) and writes y.
extern "C" __global__ void emu_read_input(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] + 1.0f;
}

// racecheck: every thread writes its slot, then reads its neighbour's, with or without a barrier.
extern "C" __global__ void emu_neighbour(float* y, int sync) {
    __shared__ float s[256];
    s[threadIdx.x] = (float)threadIdx.x;
    if (sync) __syncthreads();
    y[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// racecheck (lockstep warps): a warp-level tree sum in shared memory, with or without
// __syncwarp between steps; code without it assumes the lanes run in lockstep.
extern "C" __global__ void emu_warp_tree(const float* x, float* y, int sync) {
    __shared__ float s[32];
    unsigned lane = threadIdx.x;
    s[lane] = x[lane];
    if (sync) __syncwarp();
    for (unsigned o = 16; o > 0; o >>= 1) {
        float v = lane < o ? s[lane] + s[lane + o] : 0.0f;
        if (sync) __syncwarp();
        if (lane < o) s[lane] = v;
        if (sync) __syncwarp();
    }
    if (lane == 0) y[0] = s[0];
}

// synccheck: the two halves of the block wait at two different __syncthreads.
extern "C" __global__ void emu_divergent_barrier(float* y) {
    if (threadIdx.x < 16) {
        __syncthreads();
        y[threadIdx.x] = 1.0f;
    } else {
        __syncthreads();
        y[threadIdx.x] = 2.0f;
    }
}

// synccheck: threads past n return before the barrier the others wait at.
extern "C" __global__ void emu_exit_before_barrier(float* y, int n) {
    __shared__ float s[64];
    if ((int)threadIdx.x >= n) return;
    s[threadIdx.x] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = s[0];
}

// synccheck: a full-mask shuffle in a block of fewer than 32 threads.
extern "C" __global__ void emu_full_mask_partial_warp(float* y) {
    y[threadIdx.x] = __shfl_down_sync(0xffffffffu, (float)threadIdx.x, 1);
}

// memcheck (shared): a __shared__ array one element too small for the block that fills it.
extern "C" __global__ void emu_small_shared(float* y) {
    __shared__ float s[63];
    s[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

// memcheck (shared): reads dynamic shared memory up to index `upto`.
extern "C" __global__ void emu_dyn_upto(float* y, int upto) {
    extern __shared__ float dyn_upto[];
    if ((int)threadIdx.x < upto) dyn_upto[threadIdx.x] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int i = 0; i < upto; ++i) s += dyn_upto[i];
        y[0] = s;
    }
}

// Order dependence: every thread stores its index to y[0] without synchronisation, so the
// value left is that of whichever thread ran last (differs with the seeded thread order).
extern "C" __global__ void emu_last_writer(int* y) { y[0] = (int)threadIdx.x; }

// Limits: 40 KiB of static shared memory (with 10 KiB dynamic it exceeds 48 KiB, fine with the
// opt-in; with 200 KiB dynamic it exceeds an sm_90 block's 227 KiB).
extern "C" __global__ void emu_big_static_shared(float* y) {
    __shared__ float big[10240];
    extern __shared__ float dyn_big[];
    big[threadIdx.x] = 1.0f;
    dyn_big[threadIdx.x] = 2.0f;
    __syncthreads();
    y[threadIdx.x] = big[threadIdx.x] + dyn_big[threadIdx.x];
}
