// cuda_emu.h: lets CUDA C kernel sources (written for NVRTC) compile as host C++20 so the
// emulator (libmvq_emu) can run them. Defines the CUDA qualifiers, built-in index variables,
// vector types, __syncthreads/warp shuffles/votes (cooperative fibers, see emu_exec.cpp),
// atomics (real host atomics: blocks run concurrently on OS threads) and math intrinsics.
//
// Shared memory: `__shared__` becomes `thread_local`. A block runs entirely on one OS worker
// thread (all its CUDA threads are fibers of that OS thread), so a block-scope
// `__shared__ float t[256];` is one array for the whole block and distinct for blocks running
// concurrently on other workers. `extern __shared__ T name[];` refers to a thread-local
// buffer named `name` that the build generates (see cmake/EmuKernelWrapper.cmake).
#pragma once
#ifndef MVQ_EMU
#define MVQ_EMU 1
#endif

#include <atomic>
#include <bit>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstddef>
#include <cstring>
#include <type_traits>

// ---- qualifiers ---------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __shared__ thread_local
#define __constant__
#define __managed__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__

// ---- vector and index types ----------------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct __attribute__((aligned(8))) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(16))) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// ---- runtime interface (implemented in emu_exec.cpp) --------------------------------------
namespace mvq_emu {
/// Per-CUDA-thread state; the fiber running it points tls_thread at it.
struct ThreadCtx {
    uint3 tid;
    unsigned linear, lane, warp;
    unsigned char wait_kind;   // 0 running, 1 block barrier, 2 warp barrier
    void* fiber;
};
/// Per-block state visible to kernels (the rest lives in emu_exec.cpp).
struct BlockInfo {
    uint3 bidx;          // field names differ from the built-ins, which are macros
    dim3 bdim, gdim;
    unsigned dynamicSmemBytes;
};
// __thread (no C++ TLS wrapper call) and hidden (the kernels live in the same shared object,
// so the compiler uses the cheap local-dynamic TLS model).
extern __thread ThreadCtx* tls_thread __attribute__((visibility("hidden")));
extern __thread BlockInfo* tls_block __attribute__((visibility("hidden")));

int syncthreads_impl(int pred, int mode, const char* file, int line);  // mode 0 plain, 1 count, 2 and, 3 or
void syncwarp_impl(unsigned mask);
unsigned long long shfl_impl(unsigned mask, unsigned long long v, int kind, int arg, int width);
unsigned vote_impl(unsigned mask, int pred, int kind);                // kind 0 ballot, 1 all, 2 any
long long reduce_impl(unsigned mask, long long v, int kind);          // kind 0 add, 1 min, 2 max
unsigned activemask_impl();
[[noreturn]] void trap_impl(const char* what, const char* file, int line);
void atomic_check(void* p, std::size_t bytes);   // memcheck/initcheck of an atomic's address (emu_check.cpp)
}  // namespace mvq_emu
// Atomics are excluded from the access instrumentation (an atomic is never a race) and check
// their address explicitly.
#define MVQ_EMU_ATOMIC inline __attribute__((no_sanitize("kernel-address", "address")))
#define MVQ_EMU_SYNC inline __attribute__((always_inline))

#define threadIdx (::mvq_emu::tls_thread->tid)
#define blockIdx (::mvq_emu::tls_block->bidx)
#define blockDim (::mvq_emu::tls_block->bdim)
#define gridDim (::mvq_emu::tls_block->gdim)
constexpr int warpSize = 32;

// ---- synchronisation, shuffles, votes --------------------------------------------------------
// The default arguments name the call site (synccheck tells two different barriers apart by it).
#define MVQ_EMU_SITE const char* mvq_file = __builtin_FILE(), int mvq_line = __builtin_LINE()
MVQ_EMU_SYNC void __syncthreads(MVQ_EMU_SITE) { ::mvq_emu::syncthreads_impl(0, 0, mvq_file, mvq_line); }
MVQ_EMU_SYNC int __syncthreads_count(int p, MVQ_EMU_SITE) { return ::mvq_emu::syncthreads_impl(p, 1, mvq_file, mvq_line); }
MVQ_EMU_SYNC int __syncthreads_and(int p, MVQ_EMU_SITE) { return ::mvq_emu::syncthreads_impl(p, 2, mvq_file, mvq_line); }
MVQ_EMU_SYNC int __syncthreads_or(int p, MVQ_EMU_SITE) { return ::mvq_emu::syncthreads_impl(p, 3, mvq_file, mvq_line); }
MVQ_EMU_SYNC void __syncwarp(unsigned mask = 0xffffffffu) { ::mvq_emu::syncwarp_impl(mask); }
inline unsigned __activemask() { return ::mvq_emu::activemask_impl(); }

namespace mvq_emu {
template <class T>
inline T shfl_t(unsigned mask, T v, int kind, int arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type larger than 8 bytes");
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = shfl_impl(mask, bits, kind, arg, width);
    T r;
    std::memcpy(&r, &bits, sizeof(T));
    return r;
}
}  // namespace mvq_emu
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) { return ::mvq_emu::shfl_t(mask, v, 0, src, width); }
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) { return ::mvq_emu::shfl_t(mask, v, 1, (int)d, width); }
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) { return ::mvq_emu::shfl_t(mask, v, 2, (int)d, width); }
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) { return ::mvq_emu::shfl_t(mask, v, 3, m, width); }
inline unsigned __ballot_sync(unsigned mask, int p) { return ::mvq_emu::vote_impl(mask, p, 0); }
inline int __all_sync(unsigned mask, int p) { return (int)::mvq_emu::vote_impl(mask, p, 1); }
inline int __any_sync(unsigned mask, int p) { return (int)::mvq_emu::vote_impl(mask, p, 2); }
inline unsigned __reduce_add_sync(unsigned mask, unsigned v) { return (unsigned)::mvq_emu::reduce_impl(mask, v, 0); }
inline int __reduce_add_sync(unsigned mask, int v) { return (int)::mvq_emu::reduce_impl(mask, v, 0); }
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) { return (unsigned)::mvq_emu::reduce_impl(mask, v, 1); }
inline int __reduce_min_sync(unsigned mask, int v) { return (int)::mvq_emu::reduce_impl(mask, v, 1); }
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) { return (unsigned)::mvq_emu::reduce_impl(mask, v, 2); }
inline int __reduce_max_sync(unsigned mask, int v) { return (int)::mvq_emu::reduce_impl(mask, v, 2); }

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap() { ::mvq_emu::trap_impl("__trap()", __FILE__, __LINE__); }
#undef assert
#define assert(e) ((e) ? (void)0 : ::mvq_emu::trap_impl("assert(" #e ")", __FILE__, __LINE__))
#if defined(__x86_64__)
inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }
#else
inline long long clock64() { return (long long)__builtin_readcyclecounter(); }
#endif
inline void __nanosleep(unsigned) {}

// ---- atomics (host atomics: blocks run concurrently on OS threads) -------------------------
// GCC __atomic builtins inside functions that are not instrumented (std::atomic_ref's members
// would be instrumented as plain accesses); each checks its address first.
namespace mvq_emu {
template <class T> MVQ_EMU_ATOMIC T at_fetch_add(T* p, T v) {
    atomic_check(p, sizeof(T));
    if constexpr (std::is_integral_v<T>) {
        return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    } else {
        T old;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange(p, &old, &(T&)(T&&)(old + v), false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {}
        return old;
    }
}
template <class T> MVQ_EMU_ATOMIC T at_exch(T* p, T v) {
    atomic_check(p, sizeof(T));
    T old;
    __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);
    return old;
}
template <class T> MVQ_EMU_ATOMIC T at_cas(T* p, T cmp, T v) {
    atomic_check(p, sizeof(T));
    __atomic_compare_exchange(p, &cmp, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;  // holds the old value whether or not the exchange happened
}
template <class T, class F> MVQ_EMU_ATOMIC T at_update(T* p, F f) {
    atomic_check(p, sizeof(T));
    T old;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange(p, &old, &(T&)(T&&)f(old), false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {}
    return old;
}
}  // namespace mvq_emu
MVQ_EMU_ATOMIC float atomicAdd(float* p, float v) { return ::mvq_emu::at_fetch_add(p, v); }
MVQ_EMU_ATOMIC double atomicAdd(double* p, double v) { return ::mvq_emu::at_fetch_add(p, v); }
MVQ_EMU_ATOMIC int atomicAdd(int* p, int v) { return ::mvq_emu::at_fetch_add(p, v); }
MVQ_EMU_ATOMIC unsigned atomicAdd(unsigned* p, unsigned v) { return ::mvq_emu::at_fetch_add(p, v); }
MVQ_EMU_ATOMIC unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return ::mvq_emu::at_fetch_add(p, v); }
MVQ_EMU_ATOMIC int atomicSub(int* p, int v) { return ::mvq_emu::at_fetch_add(p, -v); }
MVQ_EMU_ATOMIC unsigned atomicSub(unsigned* p, unsigned v) { return ::mvq_emu::at_fetch_add(p, 0u - v); }
MVQ_EMU_ATOMIC int atomicExch(int* p, int v) { return ::mvq_emu::at_exch(p, v); }
MVQ_EMU_ATOMIC unsigned atomicExch(unsigned* p, unsigned v) { return ::mvq_emu::at_exch(p, v); }
MVQ_EMU_ATOMIC unsigned long long atomicExch(unsigned long long* p, unsigned long long v) { return ::mvq_emu::at_exch(p, v); }
MVQ_EMU_ATOMIC float atomicExch(float* p, float v) { return ::mvq_emu::at_exch(p, v); }
MVQ_EMU_ATOMIC int atomicCAS(int* p, int c, int v) { return ::mvq_emu::at_cas(p, c, v); }
MVQ_EMU_ATOMIC unsigned atomicCAS(unsigned* p, unsigned c, unsigned v) { return ::mvq_emu::at_cas(p, c, v); }
MVQ_EMU_ATOMIC unsigned long long atomicCAS(unsigned long long* p, unsigned long long c, unsigned long long v) { return ::mvq_emu::at_cas(p, c, v); }
#define MVQ_EMU_MINMAX(T)                                                                                              \
    MVQ_EMU_ATOMIC T atomicMax(T* p, T v) { return ::mvq_emu::at_update(p, [v](T o) { return o < v ? v : o; }); } \
    MVQ_EMU_ATOMIC T atomicMin(T* p, T v) { return ::mvq_emu::at_update(p, [v](T o) { return v < o ? v : o; }); }
MVQ_EMU_MINMAX(int)
MVQ_EMU_MINMAX(unsigned)
MVQ_EMU_MINMAX(long long)
MVQ_EMU_MINMAX(unsigned long long)
#undef MVQ_EMU_MINMAX
MVQ_EMU_ATOMIC int atomicAnd(int* p, int v) { return ::mvq_emu::at_update(p, [v](int o) { return o & v; }); }
MVQ_EMU_ATOMIC unsigned atomicAnd(unsigned* p, unsigned v) { return ::mvq_emu::at_update(p, [v](unsigned o) { return o & v; }); }
MVQ_EMU_ATOMIC int atomicOr(int* p, int v) { return ::mvq_emu::at_update(p, [v](int o) { return o | v; }); }
MVQ_EMU_ATOMIC unsigned atomicOr(unsigned* p, unsigned v) { return ::mvq_emu::at_update(p, [v](unsigned o) { return o | v; }); }
MVQ_EMU_ATOMIC int atomicXor(int* p, int v) { return ::mvq_emu::at_update(p, [v](int o) { return o ^ v; }); }
MVQ_EMU_ATOMIC unsigned atomicXor(unsigned* p, unsigned v) { return ::mvq_emu::at_update(p, [v](unsigned o) { return o ^ v; }); }
MVQ_EMU_ATOMIC unsigned atomicInc(unsigned* p, unsigned lim) {
    return ::mvq_emu::at_update(p, [lim](unsigned o) { return o >= lim ? 0u : o + 1u; });
}

// ---- math intrinsics -------------------------------------------------------------------------
// <cmath> provides expf, logf, sqrtf, fmaxf, fminf, fabsf, fmaf, copysignf, tanhf, INFINITY, ...
using std::isfinite;
using std::isinf;
using std::isnan;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float exp10f(float x) { return std::pow(10.0f, x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __float2int_rn(float x) { return (int)std::nearbyint(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)std::floor(x); }
inline int __float2int_ru(float x) { return (int)std::ceil(x); }
inline float __int2float_rn(int x) { return (float)x; }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero((unsigned)x); }
inline int __clzll(long long x) { return std::countl_zero((unsigned long long)x); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero((unsigned)x) + 1; }
inline int __ffsll(long long x) { return x == 0 ? 0 : std::countr_zero((unsigned long long)x) + 1; }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline int __mul24(int a, int b) { return a * b; }
inline unsigned __umul24(unsigned a, unsigned b) { return a * b; }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
// CUDA's global min/max overloads for device code.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
