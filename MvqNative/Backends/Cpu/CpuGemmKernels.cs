// CPU SGEMM building blocks: the register-tiled SIMD micro-kernels (AVX-512, AVX2+FMA,
// portable Vector<T>) and the routines that pack A and B into the panel layouts they read.
// The micro-kernel bodies are written out per tile shape so the JIT keeps every accumulator
// in a register; the driver that blocks for the caches and splits over threads is CpuGemm.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MvqNative.Backends.Cpu;

/// <summary>Instruction sets the managed GEMM has a micro-kernel for.</summary>
internal enum GemmIsa { Avx512, Avx2, Portable }

/// <summary>
/// One micro-kernel: computes an MR x NR tile of C from kc steps of a packed A micro-panel
/// (kc x MR, MR contiguous per step) and a packed B micro-panel (kc x NR, NR contiguous per step).
/// Store: cScale == 0 writes C = alpha*acc (C is not read); otherwise C = alpha*acc + cScale*C.
/// </summary>
internal readonly unsafe struct GemmKernel
{
    public readonly GemmIsa Isa;
    public readonly int MR, NR;
    /// <summary>True when the store uses one fused multiply-add (edge tiles must round the same way).</summary>
    public readonly bool Fused;
    public readonly delegate*<int, float*, float*, float*, int, float, float, void> Micro;
    public readonly string Name;

    public GemmKernel(GemmIsa isa, int mr, int nr, bool fused, delegate*<int, float*, float*, float*, int, float, float, void> micro, string name)
    { Isa = isa; MR = mr; NR = nr; Fused = fused; Micro = micro; Name = name; }
}

internal static unsafe class CpuGemmKernels
{
    private static int W => Vector<float>.Count;

    /// <summary>Whether this machine runs the given kernel family natively.</summary>
    public static bool IsSupported(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated,
        GemmIsa.Avx2 => Fma.IsSupported && Avx2.IsSupported,
        _ => true,
    };

    /// <summary>The fastest kernel family this machine supports.</summary>
    public static GemmIsa Best =>
        IsSupported(GemmIsa.Avx512) ? GemmIsa.Avx512 : IsSupported(GemmIsa.Avx2) ? GemmIsa.Avx2 : GemmIsa.Portable;

    /// <summary>The micro-kernel of a family (throws if the machine lacks it).</summary>
    public static GemmKernel Get(GemmIsa isa)
    {
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"GEMM kernel {isa} is not supported on this CPU");
        return isa switch
        {
            // 12 x 32 uses 24 of the 32 zmm registers for accumulators; 8x32, 6x64 and 14x32 measured
            // the same within noise (all ~210 GFLOP/s/core L1-resident on Zen 5), 12 rows wastes less on m tails than 14.
            GemmIsa.Avx512 => new(isa, 12, 32, true, &micro_avx512_12x32, "avx512 12x32"),
            // 12 accumulators + 2 B vectors + 1 broadcast fill the 16 ymm registers.
            GemmIsa.Avx2 => new(isa, 6, 16, true, &micro_avx2_6x16, "avx2 6x16"),
            _ => new(isa, 4, 2 * W, false, &micro_vector_4x2w, $"vector 4x{2 * W}"),
        };
    }

    /// <summary>
    /// Packs op(A)[i0..i0+mc, p0..p0+kc] into micro-panels of MR rows: panel r holds, for each p,
    /// the MR values of rows i0+r*MR.. at column p; rows past mc are zero.
    /// </summary>
    public static void PackA(bool transA, float* a, int lda, int i0, int mc, int p0, int kc, int mr, float* dst)
    {
        for (int r0 = 0; r0 < mc; r0 += mr)
        {
            int rows = Math.Min(mr, mc - r0);
            if (transA)
            {
                // Stored k x m: each p is a contiguous run of rows.
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + r0;
                    float* d = dst + p * mr;
                    int r = 0;
                    for (; r < rows; r++) d[r] = src[r];
                    for (; r < mr; r++) d[r] = 0;
                }
            }
            else
            {
                for (int r = 0; r < rows; r++)
                {
                    float* src = a + (long)(i0 + r0 + r) * lda + p0;
                    float* d = dst + r;
                    for (int p = 0; p < kc; p++) d[p * mr] = src[p];
                }
                for (int r = rows; r < mr; r++)
                    for (int p = 0; p < kc; p++) dst[p * mr + r] = 0;
            }
            dst += kc * mr;
        }
    }

    /// <summary>
    /// Packs op(B)[p0..p0+kc, j0..j0+nc] into micro-panels of NR columns: panel s holds, for each p,
    /// the NR values of row p at columns j0+s*NR..; columns past nc are zero.
    /// </summary>
    public static void PackB(bool transB, float* b, int ldb, int p0, int kc, int j0, int nc, int nr, float* dst)
    {
        for (int s0 = 0; s0 < nc; s0 += nr)
        {
            int cols = Math.Min(nr, nc - s0);
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0 + s0;
                    float* d = dst + p * nr;
                    if (cols == nr) Buffer.MemoryCopy(src, d, nr * 4L, nr * 4L);
                    else
                    {
                        int j = 0;
                        for (; j < cols; j++) d[j] = src[j];
                        for (; j < nr; j++) d[j] = 0;
                    }
                }
            }
            else
            {
                // Stored n x k: each column of op(B) is a contiguous row.
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (long)(j0 + s0 + j) * ldb + p0;
                    float* d = dst + j;
                    for (int p = 0; p < kc; p++) d[p * nr] = src[p];
                }
                for (int j = cols; j < nr; j++)
                    for (int p = 0; p < kc; p++) dst[p * nr + j] = 0;
            }
            dst += kc * nr;
        }
    }

    // ---- Micro-kernels (one body per tile shape; see GemmKernel for the contract) ----

    /// <summary>AVX-512 FMA tile of 12 x 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void micro_avx512_12x32(int kc, float* a, float* b, float* c, int ldc, float alpha, float cScale)
    {
        Vector512<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default, c6_0 = default, c6_1 = default, c7_0 = default, c7_1 = default, c8_0 = default, c8_1 = default, c9_0 = default, c9_1 = default, c10_0 = default, c10_1 = default, c11_0 = default, c11_1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            var a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            var a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
            var a8 = Vector512.Create(a[8]);
            c8_0 = Avx512F.FusedMultiplyAdd(a8, b0, c8_0);
            c8_1 = Avx512F.FusedMultiplyAdd(a8, b1, c8_1);
            var a9 = Vector512.Create(a[9]);
            c9_0 = Avx512F.FusedMultiplyAdd(a9, b0, c9_0);
            c9_1 = Avx512F.FusedMultiplyAdd(a9, b1, c9_1);
            var a10 = Vector512.Create(a[10]);
            c10_0 = Avx512F.FusedMultiplyAdd(a10, b0, c10_0);
            c10_1 = Avx512F.FusedMultiplyAdd(a10, b1, c10_1);
            var a11 = Vector512.Create(a[11]);
            c11_0 = Avx512F.FusedMultiplyAdd(a11, b0, c11_0);
            c11_1 = Avx512F.FusedMultiplyAdd(a11, b1, c11_1);
            a += 12; b += 32;
        }
        var va = Vector512.Create(alpha);
        if (cScale == 0)
        {
            Vector512.Store(Avx512F.Multiply(c0_0, va), c + 0 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c0_1, va), c + 0 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c1_0, va), c + 1 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c1_1, va), c + 1 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c2_0, va), c + 2 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c2_1, va), c + 2 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c3_0, va), c + 3 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c3_1, va), c + 3 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c4_0, va), c + 4 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c4_1, va), c + 4 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c5_0, va), c + 5 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c5_1, va), c + 5 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c6_0, va), c + 6 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c6_1, va), c + 6 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c7_0, va), c + 7 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c7_1, va), c + 7 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c8_0, va), c + 8 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c8_1, va), c + 8 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c9_0, va), c + 9 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c9_1, va), c + 9 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c10_0, va), c + 10 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c10_1, va), c + 10 * ldc + 16);
            Vector512.Store(Avx512F.Multiply(c11_0, va), c + 11 * ldc + 0);
            Vector512.Store(Avx512F.Multiply(c11_1, va), c + 11 * ldc + 16);
        }
        else
        {
            var vs = Vector512.Create(cScale);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c0_0, va, Avx512F.Multiply(Vector512.Load(c + 0 * ldc + 0), vs)), c + 0 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c0_1, va, Avx512F.Multiply(Vector512.Load(c + 0 * ldc + 16), vs)), c + 0 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c1_0, va, Avx512F.Multiply(Vector512.Load(c + 1 * ldc + 0), vs)), c + 1 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c1_1, va, Avx512F.Multiply(Vector512.Load(c + 1 * ldc + 16), vs)), c + 1 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c2_0, va, Avx512F.Multiply(Vector512.Load(c + 2 * ldc + 0), vs)), c + 2 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c2_1, va, Avx512F.Multiply(Vector512.Load(c + 2 * ldc + 16), vs)), c + 2 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c3_0, va, Avx512F.Multiply(Vector512.Load(c + 3 * ldc + 0), vs)), c + 3 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c3_1, va, Avx512F.Multiply(Vector512.Load(c + 3 * ldc + 16), vs)), c + 3 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c4_0, va, Avx512F.Multiply(Vector512.Load(c + 4 * ldc + 0), vs)), c + 4 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c4_1, va, Avx512F.Multiply(Vector512.Load(c + 4 * ldc + 16), vs)), c + 4 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c5_0, va, Avx512F.Multiply(Vector512.Load(c + 5 * ldc + 0), vs)), c + 5 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c5_1, va, Avx512F.Multiply(Vector512.Load(c + 5 * ldc + 16), vs)), c + 5 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c6_0, va, Avx512F.Multiply(Vector512.Load(c + 6 * ldc + 0), vs)), c + 6 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c6_1, va, Avx512F.Multiply(Vector512.Load(c + 6 * ldc + 16), vs)), c + 6 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c7_0, va, Avx512F.Multiply(Vector512.Load(c + 7 * ldc + 0), vs)), c + 7 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c7_1, va, Avx512F.Multiply(Vector512.Load(c + 7 * ldc + 16), vs)), c + 7 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c8_0, va, Avx512F.Multiply(Vector512.Load(c + 8 * ldc + 0), vs)), c + 8 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c8_1, va, Avx512F.Multiply(Vector512.Load(c + 8 * ldc + 16), vs)), c + 8 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c9_0, va, Avx512F.Multiply(Vector512.Load(c + 9 * ldc + 0), vs)), c + 9 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c9_1, va, Avx512F.Multiply(Vector512.Load(c + 9 * ldc + 16), vs)), c + 9 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10_0, va, Avx512F.Multiply(Vector512.Load(c + 10 * ldc + 0), vs)), c + 10 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c10_1, va, Avx512F.Multiply(Vector512.Load(c + 10 * ldc + 16), vs)), c + 10 * ldc + 16);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11_0, va, Avx512F.Multiply(Vector512.Load(c + 11 * ldc + 0), vs)), c + 11 * ldc + 0);
            Vector512.Store(Avx512F.FusedMultiplyAdd(c11_1, va, Avx512F.Multiply(Vector512.Load(c + 11 * ldc + 16), vs)), c + 11 * ldc + 16);
        }
    }

    /// <summary>AVX2 FMA tile of 6 x 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void micro_avx2_6x16(int kc, float* a, float* b, float* c, int ldc, float alpha, float cScale)
    {
        Vector256<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default, c4_0 = default, c4_1 = default, c5_0 = default, c5_1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            var a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            var a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            var a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            var a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            var a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            a += 6; b += 16;
        }
        var va = Vector256.Create(alpha);
        if (cScale == 0)
        {
            Vector256.Store(Avx.Multiply(c0_0, va), c + 0 * ldc + 0);
            Vector256.Store(Avx.Multiply(c0_1, va), c + 0 * ldc + 8);
            Vector256.Store(Avx.Multiply(c1_0, va), c + 1 * ldc + 0);
            Vector256.Store(Avx.Multiply(c1_1, va), c + 1 * ldc + 8);
            Vector256.Store(Avx.Multiply(c2_0, va), c + 2 * ldc + 0);
            Vector256.Store(Avx.Multiply(c2_1, va), c + 2 * ldc + 8);
            Vector256.Store(Avx.Multiply(c3_0, va), c + 3 * ldc + 0);
            Vector256.Store(Avx.Multiply(c3_1, va), c + 3 * ldc + 8);
            Vector256.Store(Avx.Multiply(c4_0, va), c + 4 * ldc + 0);
            Vector256.Store(Avx.Multiply(c4_1, va), c + 4 * ldc + 8);
            Vector256.Store(Avx.Multiply(c5_0, va), c + 5 * ldc + 0);
            Vector256.Store(Avx.Multiply(c5_1, va), c + 5 * ldc + 8);
        }
        else
        {
            var vs = Vector256.Create(cScale);
            Vector256.Store(Fma.MultiplyAdd(c0_0, va, Avx.Multiply(Vector256.Load(c + 0 * ldc + 0), vs)), c + 0 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(c0_1, va, Avx.Multiply(Vector256.Load(c + 0 * ldc + 8), vs)), c + 0 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c1_0, va, Avx.Multiply(Vector256.Load(c + 1 * ldc + 0), vs)), c + 1 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(c1_1, va, Avx.Multiply(Vector256.Load(c + 1 * ldc + 8), vs)), c + 1 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c2_0, va, Avx.Multiply(Vector256.Load(c + 2 * ldc + 0), vs)), c + 2 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(c2_1, va, Avx.Multiply(Vector256.Load(c + 2 * ldc + 8), vs)), c + 2 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c3_0, va, Avx.Multiply(Vector256.Load(c + 3 * ldc + 0), vs)), c + 3 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(c3_1, va, Avx.Multiply(Vector256.Load(c + 3 * ldc + 8), vs)), c + 3 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c4_0, va, Avx.Multiply(Vector256.Load(c + 4 * ldc + 0), vs)), c + 4 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(c4_1, va, Avx.Multiply(Vector256.Load(c + 4 * ldc + 8), vs)), c + 4 * ldc + 8);
            Vector256.Store(Fma.MultiplyAdd(c5_0, va, Avx.Multiply(Vector256.Load(c + 5 * ldc + 0), vs)), c + 5 * ldc + 0);
            Vector256.Store(Fma.MultiplyAdd(c5_1, va, Avx.Multiply(Vector256.Load(c + 5 * ldc + 8), vs)), c + 5 * ldc + 8);
        }
    }

    /// <summary>Portable Vector&lt;float&gt; tile of 4 x 2*W (multiply then add, no fusion).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void micro_vector_4x2w(int kc, float* a, float* b, float* c, int ldc, float alpha, float cScale)
    {
        Vector<float> c0_0 = default, c0_1 = default, c1_0 = default, c1_1 = default, c2_0 = default, c2_1 = default, c3_0 = default, c3_1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector.Load(b);
            var b1 = Vector.Load(b + 1 * W);
            var a0 = new Vector<float>(a[0]);
            c0_0 = a0 * b0 + c0_0;
            c0_1 = a0 * b1 + c0_1;
            var a1 = new Vector<float>(a[1]);
            c1_0 = a1 * b0 + c1_0;
            c1_1 = a1 * b1 + c1_1;
            var a2 = new Vector<float>(a[2]);
            c2_0 = a2 * b0 + c2_0;
            c2_1 = a2 * b1 + c2_1;
            var a3 = new Vector<float>(a[3]);
            c3_0 = a3 * b0 + c3_0;
            c3_1 = a3 * b1 + c3_1;
            a += 4; b += 2 * W;
        }
        var va = new Vector<float>(alpha);
        if (cScale == 0)
        {
            Vector.Store(c0_0 * va, c + 0 * ldc + 0 * W);
            Vector.Store(c0_1 * va, c + 0 * ldc + 1 * W);
            Vector.Store(c1_0 * va, c + 1 * ldc + 0 * W);
            Vector.Store(c1_1 * va, c + 1 * ldc + 1 * W);
            Vector.Store(c2_0 * va, c + 2 * ldc + 0 * W);
            Vector.Store(c2_1 * va, c + 2 * ldc + 1 * W);
            Vector.Store(c3_0 * va, c + 3 * ldc + 0 * W);
            Vector.Store(c3_1 * va, c + 3 * ldc + 1 * W);
        }
        else
        {
            var vs = new Vector<float>(cScale);
            Vector.Store(c0_0 * va + Vector.Load(c + 0 * ldc + 0 * W) * vs, c + 0 * ldc + 0 * W);
            Vector.Store(c0_1 * va + Vector.Load(c + 0 * ldc + 1 * W) * vs, c + 0 * ldc + 1 * W);
            Vector.Store(c1_0 * va + Vector.Load(c + 1 * ldc + 0 * W) * vs, c + 1 * ldc + 0 * W);
            Vector.Store(c1_1 * va + Vector.Load(c + 1 * ldc + 1 * W) * vs, c + 1 * ldc + 1 * W);
            Vector.Store(c2_0 * va + Vector.Load(c + 2 * ldc + 0 * W) * vs, c + 2 * ldc + 0 * W);
            Vector.Store(c2_1 * va + Vector.Load(c + 2 * ldc + 1 * W) * vs, c + 2 * ldc + 1 * W);
            Vector.Store(c3_0 * va + Vector.Load(c + 3 * ldc + 0 * W) * vs, c + 3 * ldc + 0 * W);
            Vector.Store(c3_1 * va + Vector.Load(c + 3 * ldc + 1 * W) * vs, c + 3 * ldc + 1 * W);
        }
    }
}
