/* mvq_emu_api.h: the C ABI that libmvq_emu.so exports: the subset of the CUDA driver API and
 * cuBLAS v2 that the MvqNative bindings call (same names and signatures as cuda.h/cublas_v2.h
 * of CUDA 12, `_v2` symbols where those headers map to them), plus a few mvqemu_* extras for
 * tests. Types are ABI-compatible stand-ins for NVIDIA's (opaque handles, int enums). */
#ifndef MVQ_EMU_API_H
#define MVQ_EMU_API_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MVQ_EMU_EXPORT __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
typedef struct CUevent_st* CUevent;
typedef struct CUgraph_st* CUgraph;
typedef struct CUgraphExec_st* CUgraphExec;
typedef int CUdevice_attribute;
typedef int CUfunction_attribute;
typedef int CUjit_option;

enum {
    CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3, CUDA_ERROR_INVALID_DEVICE = 101, CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_CONTEXT = 201, CUDA_ERROR_INVALID_HANDLE = 400, CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_READY = 600, CUDA_ERROR_ILLEGAL_ADDRESS = 700, CUDA_ERROR_ASSERT = 710,
    CUDA_ERROR_LAUNCH_FAILED = 719, CUDA_ERROR_NOT_SUPPORTED = 801, CUDA_ERROR_ILLEGAL_STATE = 401,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901
};

MVQ_EMU_EXPORT CUresult cuInit(unsigned int flags);
MVQ_EMU_EXPORT CUresult cuDriverGetVersion(int* version);
MVQ_EMU_EXPORT CUresult cuDeviceGetCount(int* count);
MVQ_EMU_EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal);
MVQ_EMU_EXPORT CUresult cuDeviceGetName(char* name, int len, CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDeviceComputeCapability(int* major, int* minor, CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags);
MVQ_EMU_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active);
MVQ_EMU_EXPORT CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev);
MVQ_EMU_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx);
MVQ_EMU_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx);
MVQ_EMU_EXPORT CUresult cuCtxGetCurrent(CUcontext* pctx);
MVQ_EMU_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx);
MVQ_EMU_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext* pctx);
MVQ_EMU_EXPORT CUresult cuCtxGetDevice(CUdevice* dev);
MVQ_EMU_EXPORT CUresult cuCtxSynchronize(void);
MVQ_EMU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes);
MVQ_EMU_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr);
MVQ_EMU_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total);
MVQ_EMU_EXPORT CUresult cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags);
MVQ_EMU_EXPORT CUresult cuMemAllocHost_v2(void** pp, size_t bytes);
MVQ_EMU_EXPORT CUresult cuMemFreeHost(void* p);
MVQ_EMU_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes);
MVQ_EMU_EXPORT CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes);
MVQ_EMU_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
MVQ_EMU_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream s);
MVQ_EMU_EXPORT CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream s);
MVQ_EMU_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
MVQ_EMU_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count);
MVQ_EMU_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int value, size_t count);
MVQ_EMU_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, CUstream s);
MVQ_EMU_EXPORT CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int value, size_t count, CUstream s);
MVQ_EMU_EXPORT CUresult cuModuleLoadData(CUmodule* module, const void* image);
MVQ_EMU_EXPORT CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                                           CUjit_option* options, void** optionValues);
MVQ_EMU_EXPORT CUresult cuModuleUnload(CUmodule module);
MVQ_EMU_EXPORT CUresult cuModuleGetFunction(CUfunction* func, CUmodule module, const char* name);
MVQ_EMU_EXPORT CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction func);
MVQ_EMU_EXPORT CUresult cuFuncSetAttribute(CUfunction func, CUfunction_attribute attrib, int value);
MVQ_EMU_EXPORT CUresult cuFuncSetCacheConfig(CUfunction func, int config);
MVQ_EMU_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                       unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                       unsigned int sharedMemBytes, CUstream stream, void** kernelParams, void** extra);
MVQ_EMU_EXPORT CUresult cuStreamCreate(CUstream* phStream, unsigned int flags);
MVQ_EMU_EXPORT CUresult cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags, int priority);
MVQ_EMU_EXPORT CUresult cuStreamDestroy_v2(CUstream s);
MVQ_EMU_EXPORT CUresult cuStreamDestroy(CUstream s);
MVQ_EMU_EXPORT CUresult cuStreamSynchronize(CUstream s);
MVQ_EMU_EXPORT CUresult cuStreamQuery(CUstream s);
MVQ_EMU_EXPORT CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags);
MVQ_EMU_EXPORT CUresult cuEventCreate(CUevent* phEvent, unsigned int flags);
MVQ_EMU_EXPORT CUresult cuEventRecord(CUevent e, CUstream s);
MVQ_EMU_EXPORT CUresult cuEventQuery(CUevent e);
MVQ_EMU_EXPORT CUresult cuEventSynchronize(CUevent e);
MVQ_EMU_EXPORT CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end);
MVQ_EMU_EXPORT CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end);
MVQ_EMU_EXPORT CUresult cuEventDestroy_v2(CUevent e);
MVQ_EMU_EXPORT CUresult cuEventDestroy(CUevent e);
MVQ_EMU_EXPORT CUresult cuStreamBeginCapture_v2(CUstream s, int mode);
MVQ_EMU_EXPORT CUresult cuStreamBeginCapture(CUstream s, int mode);
MVQ_EMU_EXPORT CUresult cuStreamEndCapture(CUstream s, CUgraph* phGraph);
MVQ_EMU_EXPORT CUresult cuStreamIsCapturing(CUstream s, int* status);
MVQ_EMU_EXPORT CUresult cuGraphGetNodes(CUgraph g, void** nodes, size_t* numNodes);
MVQ_EMU_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* phExec, CUgraph g, unsigned long long flags);
MVQ_EMU_EXPORT CUresult cuGraphLaunch(CUgraphExec e, CUstream s);
MVQ_EMU_EXPORT CUresult cuGraphExecDestroy(CUgraphExec e);
MVQ_EMU_EXPORT CUresult cuGraphDestroy(CUgraph g);
MVQ_EMU_EXPORT CUresult cuProfilerStart(void);
MVQ_EMU_EXPORT CUresult cuProfilerStop(void);
MVQ_EMU_EXPORT CUresult cuGetErrorName(CUresult error, const char** pStr);
MVQ_EMU_EXPORT CUresult cuGetErrorString(CUresult error, const char** pStr);

/* cuBLAS v2 */
typedef struct cublasContext* cublasHandle_t;
typedef int cublasStatus_t;
typedef int cublasOperation_t;   /* CUBLAS_OP_N 0, CUBLAS_OP_T 1, CUBLAS_OP_C 2 */
typedef int cublasMath_t;
typedef int cublasPointerMode_t;
typedef int cudaDataType;        /* CUDA_R_32F 0 */
typedef int cublasComputeType_t; /* CUBLAS_COMPUTE_32F 68, CUBLAS_COMPUTE_32F_FAST_TF32 77 */
typedef int cublasGemmAlgo_t;
enum {
    CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_EXECUTION_FAILED = 13, CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
};

MVQ_EMU_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t* handle);
MVQ_EMU_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t handle);
MVQ_EMU_EXPORT cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int* version);
MVQ_EMU_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, CUstream stream);
MVQ_EMU_EXPORT cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, CUstream* stream);
MVQ_EMU_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
MVQ_EMU_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode);
MVQ_EMU_EXPORT cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode);
MVQ_EMU_EXPORT cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode);
MVQ_EMU_EXPORT cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t bytes);
MVQ_EMU_EXPORT cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                             int m, int n, int k, const float* alpha, const float* A, int lda,
                                             const float* B, int ldb, const float* beta, float* C, int ldc);
MVQ_EMU_EXPORT cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                        cublasOperation_t transb, int m, int n, int k,
                                                        const float* alpha, const float* A, int lda, long long strideA,
                                                        const float* B, int ldb, long long strideB, const float* beta,
                                                        float* C, int ldc, long long strideC, int batchCount);
MVQ_EMU_EXPORT cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                           int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                           int lda, const void* B, cudaDataType Btype, int ldb, const void* beta, void* C,
                                           cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                           cublasGemmAlgo_t algo);
MVQ_EMU_EXPORT cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k, const void* alpha,
    const void* A, cudaDataType Atype, int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
    long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc, long long strideC, int batchCount,
    cublasComputeType_t computeType, cublasGemmAlgo_t algo);
MVQ_EMU_EXPORT const char* cublasGetStatusName(cublasStatus_t status);
MVQ_EMU_EXPORT const char* cublasGetStatusString(cublasStatus_t status);

/* Emulator extras */
MVQ_EMU_EXPORT int mvqemu_is_emulator(void);
/* Message of the last failure the emulator reported (kernel, allocation, call); "" if none. */
MVQ_EMU_EXPORT const char* mvqemu_last_error(void);
MVQ_EMU_EXPORT void mvqemu_clear_error(void);
/* Checks the guard regions of all live allocations now; returns how many were damaged. */
MVQ_EMU_EXPORT int mvqemu_check_guards(void);
MVQ_EMU_EXPORT size_t mvqemu_live_allocations(void);
/* The image given to cuModuleLoadData(Ex) for this module (PTX text or cubin bytes). */
MVQ_EMU_EXPORT const void* mvqemu_module_image(CUmodule module, size_t* bytes);
MVQ_EMU_EXPORT int mvqemu_kernel_count(void);
MVQ_EMU_EXPORT const char* mvqemu_kernel_name(int index);
MVQ_EMU_EXPORT int mvqemu_execution_threads(void);
/* Sanitizer. A sub-region names the part [p, p+bytes) of an allocation that a kernel argument
 * pointing into it may touch (e.g. the bytes of a workspace an op asked for); returns 0 or
 * CUDA_ERROR_INVALID_VALUE (outside one allocation, or overlapping another sub-region). */
MVQ_EMU_EXPORT int mvqemu_register_region(CUdeviceptr p, size_t bytes, const char* name);
MVQ_EMU_EXPORT int mvqemu_unregister_region(CUdeviceptr p);
/* Kernel launches so far, and those that ran under at least one checker. */
MVQ_EMU_EXPORT unsigned long long mvqemu_launch_count(void);
MVQ_EMU_EXPORT unsigned long long mvqemu_checked_launch_count(void);
/* Checkers in force ("memcheck,initcheck,racecheck,synccheck,shuffle" or "none"; MVQ_EMU_CHECKS),
 * the emulated card's arch ("sm_90" or "sm_80"; MVQ_EMU_CARD) and the thread-order seed (MVQ_EMU_SEED). */
MVQ_EMU_EXPORT const char* mvqemu_checkers(void);
MVQ_EMU_EXPORT const char* mvqemu_card(void);
MVQ_EMU_EXPORT unsigned long long mvqemu_seed(void);

#ifdef __cplusplus
}
#endif
#endif
