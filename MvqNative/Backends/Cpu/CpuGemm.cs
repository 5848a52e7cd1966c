// CPU single-precision GEMM: the public entry point, the choice between the managed kernel and
// the system BLAS, and the managed driver (cache blocking, packing, thread split) that feeds the
// register-tiled micro-kernels of CpuGemmKernels.
using System.Runtime.InteropServices;

namespace MvqNative.Backends.Cpu;

/// <summary>Which implementation <see cref="CpuGemm.Sgemm"/> uses.</summary>
internal enum GemmProvider
{
    /// <summary>The managed, packed, register-tiled SIMD kernel (deterministic, always present).</summary>
    Managed,
    /// <summary>The system OpenBLAS <c>cblas_sgemm</c>, when <see cref="SystemBlas.IsAvailable"/>.</summary>
    SystemBlas,
}

/// <summary>
/// Single-precision GEMM on the CPU, row-major: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C.
/// op(X) is X or X^T; lda/ldb/ldc are the row strides of the matrices as stored
/// (A is [m,lda] or, transposed, [k,lda]; B is [k,ldb] or, transposed, [n,ldb]; C is [m,ldc]).
/// </summary>
/// <remarks>
/// The managed kernel is deterministic: every C element is summed over k in a fixed order that
/// depends only on k (k is cut into equal blocks of at most <see cref="KcMax"/>), never on the
/// thread split, so results are bit-identical run to run and for any thread count.
/// </remarks>
internal static unsafe class CpuGemm
{
    // Cache blocking. A KC x NR packed B micro-panel (32 KiB at 256 x 32) stays in L1 while the
    // micro-kernel walks the MC x KC packed A block (192 KiB, in L2); the KC x NC B panel sits in L2/L3.
    // KC in 192..384 and MC in 96..384 measured within noise of each other on the 2-core Zen 5 VM.
    internal const int KcMax = 256;
    private const int McTarget = 192, NcMax = 2048;
    // Below this many multiply-adds per thread, the fork/join costs more than it saves.
    private const long MinMacsPerThread = 1L << 18;

    /// <summary>
    /// Implementation used by <see cref="Sgemm"/>, chosen once at startup: MVQ_GEMM=managed|blas
    /// overrides; otherwise the managed kernel. Setting SystemBlas when no BLAS loaded falls back to managed.
    /// </summary>
    // Why managed by default: the rule is "managed if it reaches >= 60% of OpenBLAS at n = 1024, else
    // OpenBLAS when present". Measured (GemmBench, Release) on the 2-core AMD Zen 5 VM against Debian's
    // OpenBLAS 0.3.21 (which picks its Haswell AVX2 kernels there): managed AVX-512 ~1.3-2x OpenBLAS at
    // 1024 with 2 threads, ~1.45x single-threaded (CPU time); the AVX2 path alone is ~0.85x. The managed
    // kernel is also bit-reproducible for any thread count, which OpenBLAS does not promise.
    public static GemmProvider Provider { get; set; } = DefaultProvider();

    /// <summary>One line for <c>mvq doctor</c>, e.g. "managed SIMD (AVX2+FMA, 2 threads)".</summary>
    public static string ProviderDescription => ProviderDescriptionFor(Provider);

    internal static string ProviderDescriptionFor(GemmProvider provider) =>
        provider == GemmProvider.SystemBlas && SystemBlas.IsAvailable
            ? $"OpenBLAS cblas_sgemm ({SystemBlas.LibraryPath})"
            : $"managed SIMD ({IsaLabel(Isa)}, {CpuParallel.Threads} thread{(CpuParallel.Threads == 1 ? "" : "s")})";

    /// <summary>Kernel family of the managed path (tests force each one the machine supports).</summary>
    internal static GemmIsa Isa { get; set; } = CpuGemmKernels.Best;

    private static GemmProvider DefaultProvider()
    {
        var env = Environment.GetEnvironmentVariable("MVQ_GEMM")?.Trim().ToLowerInvariant();
        if (env is "managed") return GemmProvider.Managed;
        if (env is "blas" or "openblas" or "system") return SystemBlas.IsAvailable ? GemmProvider.SystemBlas : GemmProvider.Managed;
        return GemmProvider.Managed;
    }

    private static string IsaLabel(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => "AVX-512+FMA",
        GemmIsa.Avx2 => "AVX2+FMA",
        _ => $"Vector<float> x{System.Numerics.Vector<float>.Count}",
    };

    /// <summary>
    /// C[m,n] = alpha * op(A) * op(B) + beta * C, row-major. When beta == 0, C is only written
    /// (NaN or garbage in C does not propagate); when alpha == 0 or k == 0, A and B are not read.
    /// </summary>
    /// <param name="transA">op(A) = A^T: A is stored [k, lda] with lda &gt;= m; else [m, lda] with lda &gt;= k.</param>
    /// <param name="transB">op(B) = B^T: B is stored [n, ldb] with ldb &gt;= k; else [k, ldb] with ldb &gt;= n.</param>
    /// <param name="m">Rows of op(A) and C.</param>
    /// <param name="n">Columns of op(B) and C.</param>
    /// <param name="k">Columns of op(A), rows of op(B).</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A as stored (see <paramref name="transA"/>).</param>
    /// <param name="lda">Row stride of A as stored.</param>
    /// <param name="b">B as stored (see <paramref name="transB"/>).</param>
    /// <param name="ldb">Row stride of B as stored.</param>
    /// <param name="beta">Scale of the old C (0: C is not read).</param>
    /// <param name="c">Output [m, ldc] with ldc &gt;= n.</param>
    /// <param name="ldc">Row stride of C.</param>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => SgemmThreads(CpuParallel.Threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>As the public <see cref="Sgemm(bool, bool, int, int, int, float, float*, int, float*, int, float, float*, int)"/>, with at most <paramref name="threads"/> threads for the managed
    /// kernel (1 inside an already parallel caller). Results do not depend on the thread count.</summary>
    internal static void SgemmThreads(int threads, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        Validate(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0) { ScaleC(m, n, beta, c, ldc); return; }
        if (Provider == GemmProvider.SystemBlas && SystemBlas.IsAvailable)
        {
            SystemBlas.SgemmUnchecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        SgemmManaged(Isa, Math.Max(1, threads), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    internal static void Validate(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (lda < Math.Max(1, transA ? m : k)) throw new ArgumentOutOfRangeException(nameof(lda), lda, "lda is smaller than the stored row width of A");
        if (ldb < Math.Max(1, transB ? k : n)) throw new ArgumentOutOfRangeException(nameof(ldb), ldb, "ldb is smaller than the stored row width of B");
        if (ldc < Math.Max(1, n)) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, "ldc is smaller than n");
        if (m > 0 && n > 0)
        {
            if (c == null) throw new ArgumentNullException(nameof(c));
            if (k > 0 && alpha != 0 && (a == null || b == null)) throw new ArgumentNullException(a == null ? nameof(a) : nameof(b));
        }
    }

    /// <summary>C = beta * C (C = 0 when beta == 0, without reading C).</summary>
    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0) row.Clear();
            else if (beta != 1) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>The managed kernel with an explicit kernel family and thread count (arguments already validated, m, n, k &gt; 0).</summary>
    internal static void SgemmManaged(GemmIsa isa, int threads, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        var kern = CpuGemmKernels.Get(isa);
        int mTiles = (m + kern.MR - 1) / kern.MR, nTiles = (n + kern.NR - 1) / kern.NR;
        long macs = (long)m * n * k;
        threads = (int)Math.Clamp(Math.Min(threads, macs / MinMacsPerThread), 1, Math.Max(1, (long)mTiles * nTiles));

        // Split the tile grid into tm x tn rectangles, one per thread, balancing the largest one.
        int tm = 1, tn = threads; long best = long.MaxValue;
        for (int d = 1; d <= threads; d++)
        {
            if (threads % d != 0) continue;
            long cost = (long)((mTiles + d - 1) / d) * ((nTiles + threads / d - 1) / (threads / d));
            if (cost < best || (cost == best && d > tm)) { best = cost; tm = d; tn = threads / d; }
        }

        var job = new Job
        {
            Kern = kern, TransA = transA, TransB = transB, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc,
        };
        if (threads == 1) { job.Run(0, m, 0, n); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int ti = t / tn, tj = t % tn;
            int r0 = (int)((long)mTiles * ti / tm) * kern.MR, r1 = Math.Min(m, (int)((long)mTiles * (ti + 1) / tm) * kern.MR);
            int c0 = (int)((long)nTiles * tj / tn) * kern.NR, c1 = Math.Min(n, (int)((long)nTiles * (tj + 1) / tn) * kern.NR);
            if (r0 < r1 && c0 < c1) job.Run(r0, r1, c0, c1);
        });
    }

    /// <summary>
    /// C[m,n] = op(A) * B^T + beta * C with B given pre-packed (<see cref="PackedB"/>, alpha = 1). Bit-identical to
    /// <see cref="Sgemm"/> with transB and the same B: the packed panels are the ones Sgemm would pack per call, the
    /// k blocks are the same and every tile runs the same micro-kernel, so only the packing is saved.
    /// Rows are split over at most <paramref name="threads"/> threads (results do not depend on the split).
    /// </summary>
    internal static void SgemmPacked(int threads, bool transA, int m, float* a, int lda, PackedB b, float beta, float* c, int ldc)
    {
        if (m == 0 || b.N == 0) return;
        if (b.K == 0) { ScaleC(m, b.N, beta, c, ldc); return; }
        if (b.Isa != Isa) throw new InvalidOperationException($"weights packed for {b.Isa}, GEMM runs {Isa}");
        var kern = CpuGemmKernels.Get(b.Isa);
        var job = new Job
        {
            Kern = kern, TransA = transA, TransB = true, M = m, N = b.N, K = b.K, Alpha = 1f, Beta = beta,
            A = a, Lda = lda, B = null, Ldb = b.K, C = c, Ldc = ldc, Packed = b.Data,
        };
        int mTiles = (m + kern.MR - 1) / kern.MR;
        threads = (int)Math.Clamp(Math.Min(threads, (long)m * b.N * b.K / MinMacsPerThread), 1, mTiles);
        if (threads == 1) { job.Run(0, m, 0, b.N); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int r0 = (int)((long)mTiles * t / threads) * kern.MR, r1 = Math.Min(m, (int)((long)mTiles * (t + 1) / threads) * kern.MR);
            if (r0 < r1) job.Run(r0, r1, 0, b.N);
        });
    }

    /// <summary>
    /// A weight W [n, k] (row-major, used as op(B) = W^T) packed once into the micro-panels <see cref="Sgemm"/>
    /// packs per call: for each column block of <see cref="NcMax"/> and each k block, the PackB panels in order.
    /// For inference, where the same weight multiplies many small batches (the prior's sampling step).
    /// </summary>
    internal sealed class PackedB : IDisposable
    {
        public readonly int N, K;
        public readonly GemmIsa Isa;
        internal float* Data;
        private readonly long _floats;

        public PackedB(float* w, int n, int k, int ldw)
        {
            N = n; K = k; Isa = CpuGemm.Isa;
            int nr = CpuGemmKernels.Get(Isa).NR;
            int kBlocks = Math.Max(1, (k + KcMax - 1) / KcMax), kcStep = Math.Max(1, (k + kBlocks - 1) / kBlocks);
            int nPad = (n + nr - 1) / nr * nr;
            _floats = Math.Max(1, (long)nPad * k);
            Data = (float*)NativeMemory.AlignedAlloc((nuint)(_floats * sizeof(float)), 64);
            float* d = Data;
            for (int jc = 0; jc < n; jc += NcMax)
            {
                int nc = Math.Min(NcMax, n - jc), ncPad = (nc + nr - 1) / nr * nr;
                for (int pc = 0; pc < k; pc += kcStep)
                {
                    int kc = Math.Min(kcStep, k - pc);
                    CpuGemmKernels.PackB(true, w, ldw, pc, kc, jc, nc, nr, d);
                    d += (long)ncPad * kc;
                }
            }
        }

        public void Dispose()
        {
            if (Data != null) { NativeMemory.AlignedFree(Data); Data = null; }
        }
    }

    /// <summary>One GEMM call's arguments; Run computes the C rectangle [r0,r1) x [c0,c1) on the calling thread.</summary>
    private struct Job
    {
        public GemmKernel Kern;
        public bool TransA, TransB;
        public int M, N, K, Lda, Ldb, Ldc;
        public float Alpha, Beta;
        public float* A, B, C;
        // Non-null: B comes pre-packed (PackedB.Data), nothing is packed per call.
        public float* Packed;

        public readonly void Run(int r0, int r1, int c0, int c1)
        {
            int mr = Kern.MR, nr = Kern.NR;
            // Equal k blocks: the summation order is a function of K alone.
            int kBlocks = (K + KcMax - 1) / KcMax, kcStep = (K + kBlocks - 1) / kBlocks;
            int mcStep = Math.Max(mr, McTarget / mr * mr);
            int ncMax = Math.Min(NcMax, (c1 - c0 + nr - 1) / nr * nr);
            long aFloats = (long)mcStep * kcStep, bFloats = Packed != null ? 0 : (long)ncMax * kcStep;
            float* buf = PackBuffers.Rent(aFloats + bFloats, out long cap);
            float* ap = buf, bp = buf + aFloats;
            float* tmp = stackalloc float[mr * nr];
            try
            {
                for (int jc = c0; jc < c1; jc += NcMax)
                {
                    int nc = Math.Min(NcMax, c1 - jc);
                    for (int pc = 0; pc < K; pc += kcStep)
                    {
                        int kc = Math.Min(kcStep, K - pc);
                        if (Packed != null) bp = Packed + (long)jc * K + (long)((nc + nr - 1) / nr * nr) * pc;
                        else CpuGemmKernels.PackB(TransB, B, Ldb, pc, kc, jc, nc, nr, bp);
                        // First k block applies beta (0: write only); later blocks accumulate.
                        float cScale = pc == 0 ? Beta : 1f;
                        for (int ic = r0; ic < r1; ic += mcStep)
                        {
                            int mc = Math.Min(mcStep, r1 - ic);
                            CpuGemmKernels.PackA(TransA, A, Lda, ic, mc, pc, kc, mr, ap);
                            Macro(ap, bp, ic, mc, jc, nc, kc, cScale, tmp);
                        }
                    }
                }
            }
            finally { PackBuffers.Return(buf, cap); }
        }

        private readonly void Macro(float* ap, float* bp, int ic, int mc, int jc, int nc, int kc, float cScale, float* tmp)
        {
            int mr = Kern.MR, nr = Kern.NR;
            var micro = Kern.Micro;
            for (int jr = 0; jr < nc; jr += nr)
            {
                int nw = Math.Min(nr, nc - jr);
                float* bPanel = bp + (long)jr * kc;
                for (int ir = 0; ir < mc; ir += mr)
                {
                    int mh = Math.Min(mr, mc - ir);
                    float* aPanel = ap + (long)ir * kc;
                    float* cTile = C + (long)(ic + ir) * Ldc + jc + jr;
                    if (mh == mr && nw == nr) { micro(kc, aPanel, bPanel, cTile, Ldc, Alpha, cScale); continue; }
                    // Edge tile: full tile into tmp, then merge the valid part rounding as the kernel would.
                    micro(kc, aPanel, bPanel, tmp, nr, 1f, 0f);
                    for (int i = 0; i < mh; i++)
                    {
                        float* cr = cTile + (long)i * Ldc, tr = tmp + i * nr;
                        if (cScale == 0) for (int j = 0; j < nw; j++) cr[j] = tr[j] * Alpha;
                        else if (Kern.Fused) for (int j = 0; j < nw; j++) cr[j] = MathF.FusedMultiplyAdd(tr[j], Alpha, cr[j] * cScale);
                        else for (int j = 0; j < nw; j++) cr[j] = tr[j] * Alpha + cr[j] * cScale;
                    }
                }
            }
        }
    }

    /// <summary>A small process-wide pool of 64-byte aligned packing buffers (bounded, so idle memory stays small).</summary>
    private static class PackBuffers
    {
        private static readonly Stack<(nint Ptr, long Cap)> s_free = new();
        private const int MaxPooled = 16;

        public static float* Rent(long floats, out long cap)
        {
            lock (s_free)
            {
                while (s_free.Count > 0)
                {
                    var (p, cp) = s_free.Pop();
                    if (cp >= floats) { cap = cp; return (float*)p; }
                    NativeMemory.AlignedFree((void*)p);
                }
            }
            cap = floats;
            return (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
        }

        public static void Return(float* p, long cap)
        {
            lock (s_free)
            {
                if (s_free.Count < MaxPooled) { s_free.Push(((nint)p, cap)); return; }
            }
            NativeMemory.AlignedFree(p);
        }
    }
}
