// LibraryImport declarations of the cuBLAS subset the library uses (cublas_api.h, v2 API).
using System.Runtime.InteropServices;

namespace MvqNative.Bindings;

/// <summary>cublasStatus_t (0 = success).</summary>
public enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

/// <summary>cublasOperation_t.</summary>
public enum CublasOperation { N = 0, T = 1, C = 2 }

/// <summary>cublasMath_t.</summary>
public enum CublasMath { Default = 0, TensorOp = 1, Pedantic = 2, Tf32TensorOp = 3, DisallowReducedPrecisionReduction = 16 }

/// <summary>cudaDataType (the values used here).</summary>
public enum CudaDataType { R32F = 0, R64F = 1, R16F = 2, R16BF = 14, R32I = 10 }

/// <summary>cublasComputeType_t (the values used here).</summary>
public enum CublasComputeType { Compute32F = 68, Compute32FPedantic = 69, Compute32FFastTf32 = 77, Compute32FFast16BF = 75, Compute32FFast16F = 74 }

/// <summary>
/// cuBLAS (libcublas.so.13/.12/.11, or libmvq_emu.so in emulator mode). Column-major;
/// alpha/beta are host pointers (the default pointer mode); matrices are device pointers.
/// </summary>
public static unsafe partial class Cublas
{
    static Cublas() => CudaLibraries.EnsureResolver();

    private const string L = CudaLibraries.Cublas;

    /// <summary>cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT.</summary>
    public const int GemmDefault = -1;

    [LibraryImport(L)] public static partial CublasStatus cublasCreate_v2(out IntPtr handle);
    [LibraryImport(L)] public static partial CublasStatus cublasDestroy_v2(IntPtr handle);
    [LibraryImport(L)] public static partial CublasStatus cublasSetStream_v2(IntPtr handle, IntPtr stream);
    [LibraryImport(L)] public static partial CublasStatus cublasSetMathMode(IntPtr handle, CublasMath mode);
    /// <summary>Gives cuBLAS a user workspace (device memory), so it allocates none itself (needed under graph capture).</summary>
    [LibraryImport(L)] public static partial CublasStatus cublasSetWorkspace_v2(IntPtr handle, ulong workspace, nuint bytes);

    /// <summary>C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C (column-major).</summary>
    [LibraryImport(L)]
    public static partial CublasStatus cublasSgemm_v2(IntPtr handle, CublasOperation transa, CublasOperation transb, int m, int n, int k,
        float* alpha, ulong A, int lda, ulong B, int ldb, float* beta, ulong C, int ldc);

    /// <summary>Batched <see cref="cublasSgemm_v2"/> with fixed element strides between matrices.</summary>
    [LibraryImport(L)]
    public static partial CublasStatus cublasSgemmStridedBatched(IntPtr handle, CublasOperation transa, CublasOperation transb, int m, int n, int k,
        float* alpha, ulong A, int lda, long strideA, ulong B, int ldb, long strideB, float* beta, ulong C, int ldc, long strideC, int batchCount);

    /// <summary>GEMM with chosen storage and compute types.</summary>
    [LibraryImport(L)]
    public static partial CublasStatus cublasGemmEx(IntPtr handle, CublasOperation transa, CublasOperation transb, int m, int n, int k,
        void* alpha, ulong A, CudaDataType Atype, int lda, ulong B, CudaDataType Btype, int ldb, void* beta, ulong C, CudaDataType Ctype, int ldc,
        CublasComputeType computeType, int algo);
}
