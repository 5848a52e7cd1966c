// emu_cublas.cpp: the cuBLAS v2 subset exported by libmvq_emu.so: handles, stream and math
// mode setters, and single-precision GEMM (cublasSgemm_v2, cublasSgemmStridedBatched,
// cublasGemmEx / cublasGemmStridedBatchedEx with F32 data) with cuBLAS's column-major
// semantics: C = alpha * op(A) * op(B) + beta * C, C is m x n, op(A) m x k, op(B) k x n,
// beta == 0 means C is not read. Host implementation, columns of C spread over the pool;
// matrices are checked to lie inside emulated allocations, guards are checked afterwards.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emu_internal.h"
#include "mvq_emu_api.h"

struct cublasContext {
    CUstream stream = nullptr;
    int mathMode = 0;
    int pointerMode = 0;
};

namespace mvq_emu {
namespace {

std::mutex g_handlesMutex;
std::set<cublasContext*>& handles() {
    static auto* h = new std::set<cublasContext*>();
    return *h;
}

bool handle_ok(cublasHandle_t h) {
    std::lock_guard<std::mutex> lk(g_handlesMutex);
    return h && handles().count(h) != 0;
}

cublasStatus_t fail(cublasStatus_t s, const std::string& msg) {
    set_last_error(msg);
    return s;
}

/// Dot product with 8 independent partial sums (vectorisable without -ffast-math).
inline float dot(const float* a, const float* b, int k) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int p = 0;
    for (; p + 8 <= k; p += 8)
        for (int u = 0; u < 8; ++u) acc[u] += a[p + u] * b[p + u];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; p < k; ++p) s += a[p] * b[p];
    return s;
}

/// Column-major SGEMM on the host. op(A)(i,p) = ta ? A[p + i*lda] : A[i + p*lda];
/// op(B)(p,j) = tb ? B[j + p*ldb] : B[p + j*ldb].
void sgemm_host(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb,
                float beta, float* C, int ldc) {
    std::size_t work = (std::size_t)m * std::max(k, 1);
    std::size_t grain = std::max<std::size_t>(1, 65536 / (work + 1));
    parallel_for((std::size_t)n, grain, [&](std::size_t j0, std::size_t j1) {
        std::vector<float> bcol(ta ? (std::size_t)k : 0);
        for (std::size_t j = j0; j < j1; ++j) {
            float* c = C + j * (std::size_t)ldc;
            if (beta == 0.0f)
                std::fill(c, c + m, 0.0f);
            else if (beta != 1.0f)
                for (int i = 0; i < m; ++i) c[i] *= beta;
            if (alpha == 0.0f || k == 0) continue;
            if (!ta) {
                auto bval = [&](int p) { return alpha * (tb ? B[j + (std::size_t)p * ldb] : B[p + j * (std::size_t)ldb]); };
                int p = 0;
                for (; p + 4 <= k; p += 4) {  // four columns of A per pass over c: a quarter of the c traffic
                    float s0 = bval(p), s1 = bval(p + 1), s2 = bval(p + 2), s3 = bval(p + 3);
                    const float* a0 = A + (std::size_t)p * lda;
                    const float *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
                    for (int i = 0; i < m; ++i) c[i] += s0 * a0[i] + s1 * a1[i] + s2 * a2[i] + s3 * a3[i];
                }
                for (; p < k; ++p) {
                    float s = bval(p);
                    const float* a = A + (std::size_t)p * lda;
                    for (int i = 0; i < m; ++i) c[i] += s * a[i];
                }
            } else {
                const float* b = B + j * (std::size_t)ldb;
                if (tb) {
                    for (int p = 0; p < k; ++p) bcol[p] = B[j + (std::size_t)p * ldb];
                    b = bcol.data();
                }
                for (int i = 0; i < m; ++i) c[i] += alpha * dot(A + (std::size_t)i * lda, b, k);
            }
        }
    });
}

bool matrix_ok(const void* p, int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0) return true;
    return mem_range_ok(p, ((std::size_t)(cols - 1) * ld + rows) * sizeof(float));
}

/// Shared path of every GEMM entry point: validation like cuBLAS, range checks, the host GEMM
/// per batch, then the guard check. `tf32`: inputs rounded to TF32 first (see round_tf32).
cublasStatus_t gemm_now(const char* call, cublasHandle_t h, int transa, int transb, int m, int n, int k, const float* alpha,
                        const float* A, int lda, long long sA, const float* B, int ldb, long long sB, const float* beta, float* C,
                        int ldc, long long sC, int batch, bool tf32);

/// TF32 as tensor cores read an FP32 operand: the 23-bit mantissa rounded to 10 bits (to nearest,
/// ties away from zero, as cvt.rna.tf32.f32), exponent unchanged; NaN and infinity pass through.
inline float round_tf32(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&x, &u, 4);
    return x;
}

/// A TF32-rounded copy of the column-major matrix at p (rows x cols, leading dimension ld).
std::vector<float> tf32_copy(const float* p, int rows, int cols, int ld) {
    std::size_t extent = cols == 0 || rows == 0 ? 0 : (std::size_t)(cols - 1) * ld + rows;
    std::vector<float> v(p, p + extent);
    for (int j = 0; j < cols; ++j)
        for (int i = 0; i < rows; ++i) v[(std::size_t)j * ld + i] = round_tf32(v[(std::size_t)j * ld + i]);
    return v;
}

/// The GEMM entry of every export: recorded when the handle's stream is capturing a graph (the
/// scalars are copied, as host-pointer-mode cuBLAS does), else run now.
cublasStatus_t gemm(const char* call, cublasHandle_t h, int transa, int transb, int m, int n, int k, const float* alpha,
                    const float* A, int lda, long long sA, const float* B, int ldb, long long sB, const float* beta, float* C,
                    int ldc, long long sC, int batch, bool tf32 = false) {
    if (!handle_ok(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, std::string(call) + ": invalid handle");
    tf32 = tf32 || h->mathMode == 3;  // CUBLAS_TF32_TENSOR_OP_MATH
    if (stream_capturing(h->stream)) {
        if (!alpha || !beta) return fail(CUBLAS_STATUS_INVALID_VALUE, std::string(call) + ": null alpha or beta");
        float a = *alpha, b = *beta;
        stream_record(h->stream, call, [=]() {
            return (int)gemm_now(call, h, transa, transb, m, n, k, &a, A, lda, sA, B, ldb, sB, &b, C, ldc, sC, batch, tf32);
        });
        return CUBLAS_STATUS_SUCCESS;
    }
    if (stream_flush(h->stream)) return fail(CUBLAS_STATUS_EXECUTION_FAILED, std::string(call) + ": a deferred copy on the handle's stream failed");
    return gemm_now(call, h, transa, transb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta, C, ldc, sC, batch, tf32);
}

cublasStatus_t gemm_now(const char* call, cublasHandle_t h, int transa, int transb, int m, int n, int k, const float* alpha,
                        const float* A, int lda, long long sA, const float* B, int ldb, long long sB, const float* beta, float* C,
                        int ldc, long long sC, int batch, bool tf32) {
    if (!handle_ok(h)) return fail(CUBLAS_STATUS_NOT_INITIALIZED, std::string(call) + ": invalid handle");
    if (transa < 0 || transa > 2 || transb < 0 || transb > 2 || m < 0 || n < 0 || k < 0 || batch < 0)
        return fail(CUBLAS_STATUS_INVALID_VALUE, std::string(call) + ": invalid operation or negative size");
    bool ta = transa != 0, tb = transb != 0;  // real data: CUBLAS_OP_C is CUBLAS_OP_T
    if (lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m))
        return fail(CUBLAS_STATUS_INVALID_VALUE, std::string(call) + ": leading dimension too small");
    if (!alpha || !beta) return fail(CUBLAS_STATUS_INVALID_VALUE, std::string(call) + ": null alpha or beta");
    float a = *alpha, b = *beta;
    if (m == 0 || n == 0 || batch == 0 || ((a == 0.0f || k == 0) && b == 1.0f)) return CUBLAS_STATUS_SUCCESS;
    bool readAB = a != 0.0f && k > 0;
    for (int i = 0; i < batch; ++i) {
        const float* Ai = A + i * sA;
        const float* Bi = B + i * sB;
        float* Ci = C + i * sC;
        if ((readAB && (!matrix_ok(Ai, ta ? k : m, ta ? m : k, lda) || !matrix_ok(Bi, tb ? n : k, tb ? k : n, ldb))) ||
            !matrix_ok(Ci, m, n, ldc))
            return fail(CUBLAS_STATUS_EXECUTION_FAILED,
                        std::string(call) + ": batch " + std::to_string(i) +
                            ": a matrix (with its leading dimension) is not inside one cuMemAlloc allocation");
    }
    if (tf32 && readAB) {
        for (int i = 0; i < batch; ++i) {
            auto ra = tf32_copy(A + i * sA, ta ? k : m, ta ? m : k, lda);
            auto rb = tf32_copy(B + i * sB, tb ? n : k, tb ? k : n, ldb);
            sgemm_host(ta, tb, m, n, k, a, ra.data(), lda, rb.data(), ldb, b, C + i * sC, ldc);
        }
    } else {
        for (int i = 0; i < batch; ++i) sgemm_host(ta, tb, m, n, k, a, A + i * sA, lda, B + i * sB, ldb, b, C + i * sC, ldc);
    }
    for (int i = 0; i < batch; ++i)   // initcheck: C's columns now hold data
        for (int j = 0; j < n; ++j) mem_mark_written(C + i * sC + (std::size_t)j * ldc, (std::size_t)m * sizeof(float));
    std::string msg;
    if (mem_check_guards(&msg) != 0)
        return fail(CUBLAS_STATUS_EXECUTION_FAILED, std::string("out-of-bounds write detected after ") + call + ": " + msg);
    return CUBLAS_STATUS_SUCCESS;
}

bool f32_compute(int computeType) {
    // CUDA_R_32F (legacy compute type), COMPUTE_32F, 32F_PEDANTIC, 32F_FAST_16F/16BF/TF32.
    return computeType == 0 || computeType == 68 || computeType == 69 || computeType == 74 || computeType == 75 ||
           computeType == 77;
}

}  // namespace
}  // namespace mvq_emu

using namespace mvq_emu;

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    auto* h = new cublasContext();
    std::lock_guard<std::mutex> lk(g_handlesMutex);
    handles().insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    std::lock_guard<std::mutex> lk(g_handlesMutex);
    if (!handle || !handles().erase(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!version) return CUBLAS_STATUS_INVALID_VALUE;
    *version = 120400;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, CUstream stream) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, CUstream* stream) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->mathMode = mode;  // CUBLAS_TF32_TENSOR_OP_MATH (3) rounds GEMM inputs to TF32; the others compute in FP32
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->mathMode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != 0 && mode != 1) return CUBLAS_STATUS_INVALID_VALUE;
    handle->pointerMode = mode;  // host and device scalars are both host memory here
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
    if (!handle_ok(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pointerMode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void*, size_t) {
    return handle_ok(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                              const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta, float* C,
                              int ldc) {
    return gemm("cublasSgemm_v2", handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                         int n, int k, const float* alpha, const float* A, int lda, long long strideA,
                                         const float* B, int ldb, long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batchCount) {
    return gemm("cublasSgemmStridedBatched", handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C,
                ldc, strideC, batchCount);
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                            const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B, cudaDataType Btype,
                            int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t) {
    if (Atype != 0 || Btype != 0 || Ctype != 0 || !f32_compute(computeType))
        return fail(CUBLAS_STATUS_NOT_SUPPORTED, "cublasGemmEx: the emulator supports CUDA_R_32F data with FP32 compute only");
    return gemm("cublasGemmEx", handle, transa, transb, m, n, k, static_cast<const float*>(alpha),
                static_cast<const float*>(A), lda, 0, static_cast<const float*>(B), ldb, 0, static_cast<const float*>(beta),
                static_cast<float*>(C), ldc, 0, 1, computeType == 77);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                          int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
                                          long long strideA, const void* B, cudaDataType Btype, int ldb, long long strideB,
                                          const void* beta, void* C, cudaDataType Ctype, int ldc, long long strideC,
                                          int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t) {
    if (Atype != 0 || Btype != 0 || Ctype != 0 || !f32_compute(computeType))
        return fail(CUBLAS_STATUS_NOT_SUPPORTED,
                    "cublasGemmStridedBatchedEx: the emulator supports CUDA_R_32F data with FP32 compute only");
    return gemm("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, static_cast<const float*>(alpha),
                static_cast<const float*>(A), lda, strideA, static_cast<const float*>(B), ldb, strideB,
                static_cast<const float*>(beta), static_cast<float*>(C), ldc, strideC, batchCount, computeType == 77);
}

const char* cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
        case 0: return "CUBLAS_STATUS_SUCCESS";
        case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
        case 7: return "CUBLAS_STATUS_INVALID_VALUE";
        case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
        case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
        case 0: return "success";
        case 1: return "the library was not initialized";
        case 3: return "the resource allocation failed";
        case 7: return "an invalid numeric value was used as an argument";
        case 8: return "an absent device architectural feature is required";
        case 11: return "an access to GPU memory space failed";
        case 13: return "the GPU program failed to execute";
        case 14: return "an internal operation failed";
        case 15: return "the functionality requested is not supported";
        case 16: return "error detected trying to check the license";
        default: return "unknown error";
    }
}

}  // extern "C"
