namespace MvqNative.Backends.Cpu;

/// <summary>
/// Single-precision GEMM on the CPU, row-major: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.
/// op(X) is X or X^T; lda/ldb/ldc are row strides of the matrices as stored.
/// (Placeholder: a plain loop. Replaced by the blocked SIMD kernel / system BLAS.)
/// </summary>
public static unsafe class CpuGemm
{
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++)
                    s += (transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]);
            }
    }
}
