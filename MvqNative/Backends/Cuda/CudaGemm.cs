// Row-major SGEMM on cuBLAS (column-major): row-major C = op(A) op(B) is column-major
// C^T = op(B)^T op(A)^T, i.e. the same call with A and B (and m and n) swapped.
using MvqNative.Bindings;

namespace MvqNative.Backends.Cuda;

/// <summary>Row-major GEMMs for the conv and linear launchers (host-pointer alpha/beta, the backend's stream).</summary>
internal static unsafe class CudaGemm
{
    /// <summary>
    /// Row-major C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C; lda/ldb/ldc are the row strides of
    /// A, B, C as stored (A is [m,k], or [k,m] when <paramref name="ta"/>). Does nothing when m, n or k is 0.
    /// </summary>
    public static void Gemm(CudaBackend b, bool ta, bool tb, int m, int n, int k, float alpha, ulong a, int lda, ulong bm, int ldb, float beta, ulong c, int ldc)
    {
        if (m == 0 || n == 0 || k == 0) return;
        b.MakeCurrent();
        Check.Cublas(Cublas.cublasSgemm_v2(b.Blas, tb ? CublasOperation.T : CublasOperation.N, ta ? CublasOperation.T : CublasOperation.N,
            n, m, k, &alpha, bm, ldb, a, lda, &beta, c, ldc));
        Interlocked.Increment(ref b.Counters.BlasCalls);
    }

    /// <summary><see cref="Gemm"/> over <paramref name="batch"/> matrix triples at fixed element strides (a stride may be 0).</summary>
    public static void GemmStrided(CudaBackend b, bool ta, bool tb, int m, int n, int k, float alpha, ulong a, int lda, long strideA,
        ulong bm, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch)
    {
        if (m == 0 || n == 0 || k == 0 || batch == 0) return;
        if (batch == 1) { Gemm(b, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc); return; }
        b.MakeCurrent();
        Check.Cublas(Cublas.cublasSgemmStridedBatched(b.Blas, tb ? CublasOperation.T : CublasOperation.N, ta ? CublasOperation.T : CublasOperation.N,
            n, m, k, &alpha, bm, ldb, strideB, a, lda, strideA, &beta, c, ldc, strideC, batch));
        Interlocked.Increment(ref b.Counters.BlasCalls);
    }
}
