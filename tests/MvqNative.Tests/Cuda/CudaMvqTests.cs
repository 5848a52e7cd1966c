// CUDA MVQ kernels beyond the conformance table: the simple (reference) scoring variant against
// float64, and the hypothesis pipeline (statistics, host fold, chunked scoring) on a
// CUDA device against the CPU backend with the same inputs: same winners, chunk invariance,
// bitwise reproducible statistics.
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda.Kernels;
using MvqNative.Benchmarks;
using MvqNative.Conformance;
using MvqNative.Mvq;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

public sealed class CudaMvqTests(ITestOutputHelper output)
{
    /// <summary>mvq_score through the reference kernel mvq_score_simple, with mvq_score's cases and reference.</summary>
    private static readonly OpDef ScoreSimple = MvqScoreOps.Score.WithCuda(CudaMvqScore.ScoreSimple);

    public static IEnumerable<object[]> SimpleCases() =>
        from device in CudaDeviceTests.Devices().Select(a => (string)a[0])
        from c in MvqScoreOps.Score.Cases
        select new object[] { device, c.Label };

    private static bool NoDevice(string device)
    {
        if (device != "none") return false;
        Assert.True(TestDevices.EmulatorSkipped, "no CUDA device here: only with the opt-out MVQ_SKIP_EMU=1");
        return true;
    }

    [Theory]
    [MemberData(nameof(SimpleCases))]
    public void SimpleScoreVariantMatchesFloat64Reference(string device, string caseLabel)
    {
        if (NoDevice(device)) return;
        var r = ConformanceRunner.RunCase(TestDevices.Get(device), ScoreSimple, ScoreSimple.Cases.Single(x => x.Label == caseLabel));
        output.WriteLine($"{device} mvq_score_simple {caseLabel}: nmse {r.WorstNmse:E2} {r.Message}");
        Assert.True(r.Passed, $"{device} mvq_score_simple [{caseLabel}]: {r.Message}");
    }

    // The global preset's bottleneck shapes at a small batch: L1 = L2 = 2, D1 = D2 = 16, hashed masks.
    private const int B = 3, L2 = 2, D2 = 16, J = 100, F = 24, D1 = 16, L1 = 2;

    private sealed record Pipeline(int[] Winners, float[] Dist, float[] Mean, float[] Var);

    private static float[] Rand(Random r, int n, float lo = -1f, float hi = 1f) =>
        Enumerable.Range(0, n).Select(_ => lo + (hi - lo) * (float)r.NextDouble()).ToArray();

    /// <summary>hidden stats, fold (host), scoring in chunks of <paramref name="chunk"/> (running argmin).</summary>
    private static Pipeline Run(Backend be, int chunk, bool identity)
    {
        var r = new Random(5);
        var masks = new uint[B * J];
        MaskHash.TrainWords(masks, 77, 3, D2, 0.5f);
        // Instance 0 repeats its first 10 words: ties inside and across chunks of 7, the smallest j must win.
        for (int j = 10; j < J; j++) masks[j] = masks[j % 10];
        using var g = be.FromArray(Rand(r, B * L2 * D2), B, L2, D2);
        using var words = be.FromArray(masks.Select(w => unchecked((int)w)).ToArray(), B, J);
        using var w1 = be.FromArray(Rand(r, F * D2, -0.25f, 0.25f), F, D2);
        using var b1 = be.FromArray(Rand(r, F, -0.25f, 0.25f), F);
        float[] gamma = Rand(r, F, 0.5f, 1.5f), beta = Rand(r, F, -0.1f, 0.1f);
        using var w2 = be.FromArray(Rand(r, D1 * F, -0.2f, 0.2f), D1, F);
        using var b2 = be.FromArray(Rand(r, D1, -0.2f, 0.2f), D1);
        using var mix = be.FromArray(Rand(r, L1 * L2), L1, L2);
        using var mixB = be.FromArray(Rand(r, L1 * D1, -0.1f, 0.1f), L1, D1);
        using var resid = be.FromArray(Rand(r, B * L1 * D1, -0.5f, 0.5f), B, L1, D1);
        using var mean = be.Empty(F); using var var_ = be.Empty(F);
        MvqScoreOps.HiddenStats.Run(be, [g, words, w1, b1], [mean, var_]);
        // The fold on the host (batchnorm_fold's float math), so that only the hypothesis ops run on the device.
        float[] m = mean.ToArray(), v = var_.ToArray(), sc = new float[F], sh = new float[F];
        for (int k = 0; k < F; k++)
        {
            float rs = (float)(1.0 / Math.Sqrt((double)v[k] + 1e-5f));
            sc[k] = gamma[k] * rs; sh[k] = beta[k] - m[k] * sc[k];
        }
        using var scale = be.FromArray(sc, F); using var shift = be.FromArray(sh, F);
        using var bestIdx = be.EmptyInt(B); using var bestDist = be.Empty(B); using var dist = be.Empty(B, J);
        bestIdx.Zero();
        bestDist.Fill(float.PositiveInfinity);
        for (int j0 = 0; j0 < J; j0 += chunk)
            MvqScoreOps.RunScore(be, new MvqScoreAttrs(j0, Math.Min(chunk, J - j0), 0.2f, identity),
                g: g, masks: words, w1: w1, b1: b1, bnScale: scale, bnShift: shift, w2: w2, b2: b2,
                mix: identity ? null : mix, mixBias: identity ? null : mixB, resid: resid, bestIndex: bestIdx, bestDist: bestDist, dist: dist);
        return new Pipeline(bestIdx.ToIntArray(), dist.ToArray(), mean.ToArray(), var_.ToArray());
    }

    [Theory]
    [MemberData(nameof(CudaDeviceTests.Devices), MemberType = typeof(CudaDeviceTests))]
    public void HypothesisPipelinePicksTheCpuWinners(string device)
    {
        if (NoDevice(device)) return;
        var gpuBe = TestDevices.Get(device);
        foreach (bool identity in new[] { false, true })
        {
            var cpu = Run(CpuBackend.Instance, J, identity);
            var whole = Run(gpuBe, J, identity);
            var chunked = Run(gpuBe, 7, identity);
            output.WriteLine($"identity {identity}: winners cpu [{string.Join(',', cpu.Winners)}] {device} [{string.Join(',', whole.Winners)}]");
            Assert.InRange(cpu.Winners[0], 0, 9);
            Assert.Equal(cpu.Winners, whole.Winners);
            // Chunking never changes a distance on the device: every (b, j) is computed by the same code.
            Assert.Equal(whole.Dist, chunked.Dist);
            Assert.Equal(whole.Winners, chunked.Winners);
            // Deterministic reductions: the statistics repeat bit for bit.
            Assert.Equal(whole.Mean, chunked.Mean);
            Assert.Equal(whole.Var, chunked.Var);
            for (int i = 0; i < cpu.Dist.Length; i++) Assert.Equal(cpu.Dist[i], whole.Dist[i], 1e-5f);
            for (int k = 0; k < F; k++) Assert.Equal(cpu.Var[k], whole.Var[k], 1e-5f);
        }
    }

    public static IEnumerable<object[]> AllDevices() => TestDevices.All.Select(d => new object[] { d });

    /// <summary>
    /// An out-of-range winner index is an error on every backend with the same message: the CPU throws at once, a CUDA
    /// device records it in its fault word and the next wait (here the download of the words) throws; the fault is
    /// cleared, so the backend keeps working.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllDevices))]
    public void OutOfRangeWinnerIsReportedOnEveryBackend(string device)
    {
        var be = TestDevices.Get(device);
        const int b = 4, j = 5;
        using var masks = be.FromArray(Enumerable.Range(100, b * j).ToArray(), b, j);
        using var index = be.FromArray(new[] { 0, 4, 7, 2 }, b);
        using var words = be.EmptyInt(b);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            MvqOps.SelectWords.Run(be, [masks, index], [words]);
            words.ToIntArray();
        });
        output.WriteLine($"{device}: {e.Message}");
        Assert.Contains("mvq_select_words: index 7 of instance 2 outside [0, 5)", e.Message);
        // Cleared: a valid call afterwards runs and downloads without an error.
        using var good = be.FromArray(new[] { 0, 4, 3, 2 }, b);
        MvqOps.SelectWords.Run(be, [masks, good], [words]);
        Assert.Equal(new[] { 100, 109, 113, 117 }, words.ToIntArray());
    }

    [Theory]
    [MemberData(nameof(CudaDeviceTests.Devices), MemberType = typeof(CudaDeviceTests))]
    public void FusedAndSimpleVariantsPickTheSameWinners(string device)
    {
        if (NoDevice(device)) return;
        var be = TestDevices.Get(device);
        var c = MvqScoreOps.Score.Cases.Single(x => x.Label == "blocks offset tail");
        var (ins, outs) = ConformanceRunner.Generate(c);
        int[] Winners(OpImpl impl, out float[] dist)
        {
            var tin = ins.Select((a, i) => Upload(be, a, c.In[i]!)).ToArray();
            var tout = outs.Select((a, i) => Upload(be, a, c.Out[i])).ToArray();
            try
            {
                impl(new OpCall(be, tin, tout, c.Attrs));
                dist = tout[2].ToArray();
                return tout[0].ToIntArray();
            }
            finally { foreach (var t in tin.Concat(tout)) t.Dispose(); }
        }
        var fused = Winners(CudaMvqScore.Score, out var df);
        var simple = Winners(CudaMvqScore.ScoreSimple, out var ds);
        Assert.Equal(simple, fused);
        for (int i = 0; i < df.Length; i++) Assert.Equal(ds[i], df[i], 1e-5f);
    }

    /// <summary>Statistics and scoring at grid sizes (identity mix) on <paramref name="be"/>: mean, var, dist, winners.</summary>
    private static (float[] Mean, float[] Var, float[] Dist, int[] Win) GridRun(Backend be, int b, int l2, int d2, int j, int f, int d1)
    {
        var r = new Random(11);
        var masks = new uint[b * j];
        MaskHash.TrainWords(masks, 5, 1, d2, 0.5f);
        using var g = be.FromArray(Rand(r, b * l2 * d2), b, l2, d2);
        using var words = be.FromArray(masks.Select(w => unchecked((int)w)).ToArray(), b, j);
        using var w1 = be.FromArray(Rand(r, f * d2, -0.25f, 0.25f), f, d2);
        using var b1 = be.FromArray(Rand(r, f, -0.25f, 0.25f), f);
        using var scale = be.FromArray(Rand(r, f, 0.5f, 1.5f), f);
        using var shift = be.FromArray(Rand(r, f, -0.1f, 0.1f), f);
        using var w2 = be.FromArray(Rand(r, d1 * f, -0.2f, 0.2f), d1, f);
        using var b2 = be.FromArray(Rand(r, d1, -0.2f, 0.2f), d1);
        using var resid = be.FromArray(Rand(r, b * l2 * d1, -0.5f, 0.5f), b, l2, d1);
        using var mean = be.Empty(f); using var var_ = be.Empty(f);
        MvqScoreOps.HiddenStats.Run(be, [g, words, w1, b1], [mean, var_]);
        using var bestIdx = be.EmptyInt(b); using var bestDist = be.Empty(b); using var dist = be.Empty(b, j);
        bestIdx.Zero();
        bestDist.Fill(float.PositiveInfinity);
        MvqScoreOps.RunScore(be, new MvqScoreAttrs(0, j, 0.2f, true),
            g: g, masks: words, w1: w1, b1: b1, bnScale: scale, bnShift: shift, w2: w2, b2: b2,
            mix: null, mixBias: null, resid: resid, bestIndex: bestIdx, bestDist: bestDist, dist: dist);
        return (mean.ToArray(), var_.ToArray(), dist.ToArray(), bestIdx.ToIntArray());
    }

    /// <summary>
    /// Grid heads past toy sizes: a 64x64 grid model's bottleneck (L2 = 256, D1 = D2 = 16, F = 64) and a
    /// 128x128 one (L2 = 1024, D2 = 32: L2*D2 = 32768 floats of g, above the 48 KiB of shared memory a launch
    /// gets by default). The fused kernel runs (no fallback: f is streamed per token with an identity mix),
    /// the tiled statistics run, and both agree with the CPU.
    /// </summary>
    [Theory]
    [MemberData(nameof(CudaDeviceTests.Devices), MemberType = typeof(CudaDeviceTests))]
    public void GridSizesRunTheFusedKernelAndTiledStatistics(string device)
    {
        if (NoDevice(device)) return;
        var be = TestDevices.Get(device);
        foreach (var (l2, d2, f, d1) in new[] { (256, 16, 64, 16), (1024, 32, 16, 16) })
        {
            const int b = 2, j = 6;
            long shared = CudaMvqScore.FusedShared(f, d2, d1, l2, l2, true, Math.Clamp(32 / d1, 1, l2), CudaMvqScore.FusedThreads / 32);
            Assert.True(shared <= CudaMvqScore.MaxFusedShared, $"fused tile {shared} B at L2 {l2}");
            long before = CudaMvqScore.Fallbacks;
            var gpu = GridRun(be, b, l2, d2, j, f, d1);
            Assert.Equal(CudaMvqScore.Fused, CudaMvqScore.LastVariant);
            Assert.Equal(before, CudaMvqScore.Fallbacks);
            var cpu = GridRun(CpuBackend.Instance, b, l2, d2, j, f, d1);
            output.WriteLine($"L2 {l2} D2 {d2}: winners cpu [{string.Join(',', cpu.Win)}] {device} [{string.Join(',', gpu.Win)}], shared {shared} B");
            // Double sums in another order (per-block partials), rounded to float: a few ulps.
            for (int k = 0; k < f; k++)
            {
                Assert.Equal(cpu.Mean[k], gpu.Mean[k], 1e-5f);
                Assert.Equal(cpu.Var[k], gpu.Var[k], 1e-5f);
            }
            for (int i = 0; i < cpu.Dist.Length; i++) Assert.Equal(cpu.Dist[i], gpu.Dist[i], 1e-4f);
            Assert.Equal(cpu.Win, gpu.Win);
        }
    }

    /// <summary>
    /// `mvq bench kernels` at the grid configurations (64x64 and 128x128 RGB, one image, J cut to 4 for the emulator:
    /// which scoring kernel runs does not depend on J) times every kernel, and its mvq_score rows say the fused kernel
    /// ran: the rows the issue found measuring the simple kernel without saying so now carry variant and fallback.
    /// </summary>
    [Theory]
    [MemberData(nameof(CudaDeviceTests.Devices), MemberType = typeof(CudaDeviceTests))]
    public void KernelBenchRunsTheFusedKernelAtGridSizes(string device)
    {
        if (NoDevice(device)) return;
        var configs = new[] { KernelBenchConfig.Rgb64Grid(1) with { J = 4 }, KernelBenchConfig.Rgb128Grid(1) with { J = 4 } };
        var res = KernelBench.Run(TestDevices.Get(device), configs, repeats: 1, warmup: 0);
        foreach (var c in configs)
        {
            var score = Assert.Single(res.Rows, r => r.Config == c.Name && r.Kernel == MvqScoreOps.Score.Name);
            output.WriteLine($"{c.Name}: mvq_score {score.MedianMs:F1} ms, variant {score.Variant}, fallback {score.Fallback}");
            Assert.NotNull(score.MedianMs);
            Assert.Equal(CudaMvqScore.Fused, score.Variant);
            Assert.False(score.Fallback);
            Assert.All(res.Rows.Where(r => r.Config == c.Name), r => Assert.NotNull(r.MedianMs));
        }
    }

    private static Tensor Upload(Backend be, float[] a, TensorSpec s)
    {
        var t = s.DType == DType.I32 ? be.EmptyInt(s.Shape) : be.Empty(s.Shape);
        t.CopyFrom((ReadOnlySpan<float>)a);
        return t;
    }
}
