// SGEMM tests: the managed kernel (every SIMD family this CPU runs, several thread counts) and the
// system BLAS against a float64 triple loop, over transposes, odd sizes, alpha/beta, padded leading
// dimensions; plus bit-determinism and argument checks.
using MvqNative.Backends.Cpu;
using Xunit;

namespace MvqNative.Tests.Cpu;

public unsafe class GemmTests
{
    /// <summary>A matrix stored row-major with row stride Ld &gt;= Cols; the padding holds NaN so reading it shows.</summary>
    private sealed class Mat
    {
        public readonly int Rows, Cols, Ld;
        public readonly float[] Data;

        public Mat(int rows, int cols, int pad, Random rng, bool nan = false)
        {
            Rows = rows; Cols = cols; Ld = Math.Max(1, cols + pad);
            Data = new float[Math.Max(1, rows * Ld)];
            Array.Fill(Data, float.NaN);
            if (!nan)
                for (int i = 0; i < rows; i++)
                    for (int j = 0; j < cols; j++) Data[i * Ld + j] = (float)(rng.NextDouble() * 2 - 1);
        }

        public float this[int i, int j] => Data[i * Ld + j];
        public Mat Clone() => new(this);
        private Mat(Mat o) { Rows = o.Rows; Cols = o.Cols; Ld = o.Ld; Data = (float[])o.Data.Clone(); }
    }

    private delegate void Gemm(bool ta, bool tb, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    private static void Call(Gemm g, bool ta, bool tb, int m, int n, int k, float alpha, Mat a, Mat b, float beta, Mat c)
    {
        fixed (float* pa = a.Data, pb = b.Data, pc = c.Data)
            g(ta, tb, m, n, k, alpha, pa, a.Ld, pb, b.Ld, beta, pc, c.Ld);
    }

    /// <summary>
    /// alpha*op(A)op(B) + beta*C0 in float64, and per element the bound (k+2) unit roundoffs of the sum
    /// of |terms|: the classical worst case for a length-k float32 dot product plus the scale and add.
    /// </summary>
    private static (double[] Want, double[] Tol) Reference(bool ta, bool tb, int m, int n, int k, float alpha, Mat a, Mat b, float beta, Mat c0)
    {
        const double u = 5.97e-8; // float32 unit roundoff (2^-24)
        var want = new double[m * n];
        var tol = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0, sAbs = 0;
                for (int p = 0; p < k; p++)
                {
                    double t = (double)(ta ? a[p, i] : a[i, p]) * (tb ? b[j, p] : b[p, j]);
                    s += t; sAbs += Math.Abs(t);
                }
                double old = beta == 0 ? 0 : (double)beta * c0[i, j];
                want[i * n + j] = alpha * s + old;
                tol[i * n + j] = (k + 2) * u * (Math.Abs(alpha) * sAbs + Math.Abs(old)) + 1e-30;
            }
        return (want, tol);
    }

    /// <summary>Checks C against the float64 reference (NaN fails) and that C's padding columns were not written.</summary>
    private static void AssertMatches(bool ta, bool tb, int m, int n, int k, float alpha, Mat a, Mat b, float beta, Mat c0, Mat c, string label)
    {
        var (want, tol) = Reference(ta, tb, m, n, k, alpha, a, b, beta, c0);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float got = c[i, j];
                Assert.True(Math.Abs(got - want[i * n + j]) <= tol[i * n + j], $"{label}: C[{i},{j}] = {got}, want {want[i * n + j]} (tol {tol[i * n + j]:E2})");
            }
        for (int i = 0; i < m; i++)
            for (int j = n; j < c.Ld; j++)
                Assert.True(float.IsNaN(c[i, j]), $"{label}: padding C[{i},{j}] was written");
    }

    public static IEnumerable<object[]> Shapes() =>
        from s in new (int M, int N, int K)[]
        {
            (1, 1, 1), (1, 17, 3), (3, 3, 3), (17, 1, 31), (17, 31, 1), (31, 17, 64), (65, 67, 71),
            (129, 67, 255), (13, 45, 600), (40, 2100, 5),
        }
        from ta in new[] { false, true }
        from tb in new[] { false, true }
        select new object[] { s.M, s.N, s.K, ta, tb };

    public static IEnumerable<object[]> Families() =>
        from isa in Enum.GetValues<GemmIsa>()
        where CpuGemmKernels.IsSupported(isa)
        from threads in new[] { 1, 3 }
        select new object[] { isa.ToString(), threads };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void PublicSgemmMatchesFloat64(int m, int n, int k, bool ta, bool tb)
    {
        var rng = new Random(m * 10007 + n * 101 + k);
        var a = ta ? new Mat(k, m, 3, rng) : new Mat(m, k, 2, rng);
        var b = tb ? new Mat(n, k, 1, rng) : new Mat(k, n, 5, rng);
        var c0 = new Mat(m, n, 4, rng);
        foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.5f, 1f), (2f, 0.75f) })
        {
            var c = c0.Clone();
            Call(CpuGemm.Sgemm, ta, tb, m, n, k, alpha, a, b, beta, c);
            AssertMatches(ta, tb, m, n, k, alpha, a, b, beta, c0, c, $"{m}x{n}x{k} ta={ta} tb={tb} alpha={alpha} beta={beta}");
        }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryKernelFamilyAndThreadCountMatchesFloat64(string isaName, int threads)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        Gemm g = (ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc) =>
            CpuGemm.SgemmManaged(isa, threads, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
        var rng = new Random(7);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (3, 17, 31), (65, 67, 71), (129, 67, 255), (37, 45, 600) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                {
                    var a = ta ? new Mat(k, m, 1, rng) : new Mat(m, k, 0, rng);
                    var b = tb ? new Mat(n, k, 0, rng) : new Mat(k, n, 2, rng);
                    var c0 = new Mat(m, n, 1, rng);
                    var c = c0.Clone();
                    Call(g, ta, tb, m, n, k, 0.5f, a, b, -1.25f, c);
                    AssertMatches(ta, tb, m, n, k, 0.5f, a, b, -1.25f, c0, c, $"{isa} t={threads} {m}x{n}x{k} ta={ta} tb={tb}");
                }
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void BetaZeroOverwritesNaNInC(string isaName, int threads)
    {
        var isa = Enum.Parse<GemmIsa>(isaName);
        var rng = new Random(11);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (31, 33, 17), (100, 70, 300) })
        {
            var a = new Mat(m, k, 0, rng);
            var b = new Mat(k, n, 0, rng);
            var c0 = new Mat(m, n, 3, rng, nan: true);
            var c = c0.Clone();
            Call((ta, tb, mm, nn, kk, al, pa, lda, pb, ldb, be, pc, ldc) =>
                CpuGemm.SgemmManaged(isa, threads, ta, tb, mm, nn, kk, al, pa, lda, pb, ldb, be, pc, ldc),
                false, false, m, n, k, 1f, a, b, 0f, c);
            AssertMatches(false, false, m, n, k, 1f, a, b, 0f, c0, c, $"{isa} t={threads} {m}x{n}x{k} beta=0");
        }
    }

    [Fact]
    public void ZeroKOrZeroAlphaOnlyScalesC()
    {
        var rng = new Random(3);
        var a = new Mat(5, 4, 0, rng, nan: true); // alpha == 0 / k == 0: A and B must not be read
        var b = new Mat(4, 6, 0, rng, nan: true);
        var c0 = new Mat(5, 6, 2, rng);
        var c = c0.Clone();
        Call(CpuGemm.Sgemm, false, false, 5, 6, 0, 1f, a, b, 0.5f, c);
        for (int i = 0; i < 5; i++) for (int j = 0; j < 6; j++) Assert.Equal(0.5f * c0[i, j], c[i, j]);
        c = c0.Clone();
        Call(CpuGemm.Sgemm, false, false, 5, 6, 4, 0f, a, b, -2f, c);
        for (int i = 0; i < 5; i++) for (int j = 0; j < 6; j++) Assert.Equal(-2f * c0[i, j], c[i, j]);
        var cn = new Mat(5, 6, 0, rng, nan: true);
        Call(CpuGemm.Sgemm, false, false, 5, 6, 0, 1f, a, b, 0f, cn);
        for (int i = 0; i < 5; i++) for (int j = 0; j < 6; j++) Assert.Equal(0f, cn[i, j]);
    }

    [Fact]
    public void ResultsAreBitIdenticalAcrossRunsAndThreadCounts()
    {
        var rng = new Random(5);
        const int m = 157, n = 203, k = 777;
        var a = new Mat(m, k, 0, rng);
        var b = new Mat(n, k, 0, rng);
        var c0 = new Mat(m, n, 0, rng);
        foreach (var isa in Enum.GetValues<GemmIsa>().Where(CpuGemmKernels.IsSupported))
        {
            Mat Run(int threads)
            {
                var c = c0.Clone();
                Call((ta, tb, mm, nn, kk, al, pa, lda, pb, ldb, be, pc, ldc) =>
                    CpuGemm.SgemmManaged(isa, threads, ta, tb, mm, nn, kk, al, pa, lda, pb, ldb, be, pc, ldc),
                    false, true, m, n, k, 1.5f, a, b, 0.25f, c);
                return c;
            }
            var first = Run(2);
            Assert.Equal(first.Data, Run(2).Data);
            Assert.Equal(first.Data, Run(1).Data);
            Assert.Equal(first.Data, Run(5).Data);
        }
        var p1 = c0.Clone(); var p2 = c0.Clone();
        Call(CpuGemm.Sgemm, false, true, m, n, k, 1f, a, b, 0f, p1);
        Call(CpuGemm.Sgemm, false, true, m, n, k, 1f, a, b, 0f, p2);
        Assert.Equal(p1.Data, p2.Data);
    }

    [Fact]
    public void SystemBlasAgreesWithManagedKernel()
    {
        if (!SystemBlas.IsAvailable)
        {
            // Without a BLAS the API must say so rather than compute anything.
            Assert.Null(SystemBlas.LibraryPath);
            Assert.Throws<PlatformNotSupportedException>(() => SystemBlas.Sgemm(false, false, 1, 1, 1, 1f, null, 1, null, 1, 0f, null, 1));
            Assert.Contains("managed", CpuGemm.ProviderDescription);
            return;
        }
        Assert.False(string.IsNullOrEmpty(SystemBlas.LibraryPath));
        var rng = new Random(9);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (17, 31, 3), (129, 67, 255) })
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                {
                    var a = ta ? new Mat(k, m, 2, rng) : new Mat(m, k, 1, rng);
                    var b = tb ? new Mat(n, k, 3, rng) : new Mat(k, n, 0, rng);
                    var c0 = new Mat(m, n, 2, rng, nan: true);
                    var ours = c0.Clone(); var blas = c0.Clone();
                    Call((ta2, tb2, mm, nn, kk, al, pa, lda, pb, ldb, be, pc, ldc) =>
                        CpuGemm.SgemmManaged(CpuGemmKernels.Best, CpuParallel.Threads, ta2, tb2, mm, nn, kk, al, pa, lda, pb, ldb, be, pc, ldc),
                        ta, tb, m, n, k, 0.75f, a, b, 0f, ours);
                    Call(SystemBlas.Sgemm, ta, tb, m, n, k, 0.75f, a, b, 0f, blas);
                    string label = $"openblas {m}x{n}x{k} ta={ta} tb={tb}";
                    AssertMatches(ta, tb, m, n, k, 0.75f, a, b, 0f, c0, blas, label);
                    // Each is within the rounding bound of the exact value, so they differ by at most twice it.
                    var (_, tol) = Reference(ta, tb, m, n, k, 0.75f, a, b, 0f, c0);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                            Assert.True(Math.Abs(ours[i, j] - blas[i, j]) <= 2 * tol[i * n + j], $"{label}: C[{i},{j}] ours {ours[i, j]} blas {blas[i, j]}");
                }
    }

    [Theory]
    [InlineData(64, 384, 128)]
    [InlineData(70, 300, 300)]    // two k blocks, a column tail
    [InlineData(5, 2100, 40)]     // two column blocks of the driver
    [InlineData(1, 7, 1)]
    public void PackedLinearIsBitIdenticalToTheLinearOp(int n, int fout, int fin)
    {
        var rng = new Random(n * 31 + fout);
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var be = CpuBackend.Instance;
        using var x = be.FromArray(R(n * fin), n, fin);
        using var w = be.FromArray(R(fout * fin), fout, fin);
        using var b = be.FromArray(R(fout), fout);
        using var y0 = be.Zeros(n, fout);
        using var y1 = be.Zeros(n, fout);
        MvqNative.Ops.LinearOps.Forward.Run(be, [x, w, b], [y0]);
        using (var p = new CpuPackedLinear(w, b)) p.Forward(x, y1);
        Assert.Equal(y0.ToArray().Select(BitConverter.SingleToInt32Bits), y1.ToArray().Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void RejectsLeadingDimensionsSmallerThanTheWidth()
    {
        var buf = new float[64];
        fixed (float* p = buf)
        {
            float* q = p;
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(false, false, 4, 4, 5, 1f, q, 4, q, 4, 0f, q, 4));
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(true, false, 5, 4, 4, 1f, q, 4, q, 4, 0f, q, 4));
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(false, true, 4, 4, 5, 1f, q, 5, q, 4, 0f, q, 4));
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(false, false, 4, 5, 4, 1f, q, 4, q, 5, 0f, q, 4));
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(false, false, -1, 4, 4, 1f, q, 4, q, 4, 0f, q, 4));
        }
    }

    [Fact]
    public void ProviderDescriptionNamesTheImplementation()
    {
        var d = CpuGemm.ProviderDescription;
        Assert.True(CpuGemm.Provider == GemmProvider.SystemBlas && SystemBlas.IsAvailable ? d.StartsWith("OpenBLAS") : d.StartsWith("managed SIMD"), d);
    }
}
