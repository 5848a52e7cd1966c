// Kernel benchmark: the median time of each fused kernel (vq_lookup, mvq_hidden_stats, mvq_score)
// and of one GEMM-heavy op (linear_forward, for calibration) at fixed model-sized shapes, against
// the floor counted from the shapes (bytes moved, flops) and the device's peak figures.
// `mvq bench kernels` prints its rows.
using System.Diagnostics;
using MvqNative.Backends;
using MvqNative.Backends.Cuda;
using MvqNative.Backends.Cuda.Kernels;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Benchmarks;

/// <summary>
/// The shapes of one benchmark configuration: batch B, primary tokens L1 of D1 dims with K1
/// codes, secondary tokens L2 of D2 dims, J hypotheses, hidden width F of f, identity mix
/// (grid heads, L1 = L2), and the image (C, H, W) whose 3x3 conv at the token grid (H/4, W/4)
/// gives the calibration GEMM.
/// </summary>
internal sealed record KernelBenchConfig(string Name, int B, int L1, int L2, int D1, int D2, int K, int J, int F, bool IdentityMix,
    int Channels, int Height, int Width, int ConvChannels = 64)
{
    /// <summary>fmnist-mvq-global at batch 256 with J = 2048: B=256, L1=L2=2, D=16, K=64, F=64, 28x28x1.</summary>
    public static KernelBenchConfig FmnistMvqGlobal(int batch = 256) =>
        new("fmnist-mvq-global", batch, 2, 2, 16, 16, 64, 2048, 64, false, 1, 28, 28);

    /// <summary>64x64 RGB, grid heads (16x16 = 256 tokens per image, identity mix): B=64, D=16, K=512, J=256, F=64.</summary>
    public static KernelBenchConfig Rgb64Grid(int batch = 64) =>
        new("rgb64-grid", batch, 256, 256, 16, 16, 512, 256, 64, true, 3, 64, 64);

    /// <summary>128x128 RGB, grid heads (32x32 = 1024 tokens, identity mix), D2 = 32 (L2*D2 = 32768), J = 2048: B=16, D1=16, K=512, F=64.</summary>
    public static KernelBenchConfig Rgb128Grid(int batch = 16) =>
        new("rgb128-grid", batch, 1024, 1024, 16, 32, 512, 2048, 64, true, 3, 128, 128);

    /// <summary>The built-in configurations; <paramref name="batch"/> overrides every config's B (small values for emulators).</summary>
    public static IReadOnlyList<KernelBenchConfig> Defaults(int? batch = null) =>
        [batch is int b ? FmnistMvqGlobal(b) : FmnistMvqGlobal(), batch is int c ? Rgb64Grid(c) : Rgb64Grid(), batch is int d ? Rgb128Grid(d) : Rgb128Grid()];
}

/// <summary>Peak figures of a device: memory bandwidth (GB/s) and FP32 non-tensor-core rate (TFLOP/s), from datasheets.</summary>
internal sealed record DevicePeak(string Match, double BandwidthGBs, double Fp32Tflops, string Source);

/// <summary>Datasheet peaks keyed by a substring of the CUDA device name (most specific first).</summary>
internal static class DevicePeaks
{
    /// <summary>The table; <see cref="Find"/> returns the first entry whose Match the device name contains.</summary>
    public static IReadOnlyList<DevicePeak> Table { get; } =
    [
        new("H200", 4800, 67, "NVIDIA H200 SXM datasheet: 4.8 TB/s HBM3e, 67 TFLOP/s FP32"),
        new("H100 NVL", 3900, 60, "NVIDIA H100 NVL datasheet: 3.9 TB/s, 60 TFLOP/s FP32"),
        new("H100 PCIe", 2000, 51, "NVIDIA H100 PCIe datasheet: 2.0 TB/s, 51 TFLOP/s FP32"),
        new("H100", 3350, 67, "NVIDIA H100 SXM datasheet: 3.35 TB/s HBM3, 67 TFLOP/s FP32"),
        new("A100-SXM4-80GB", 2039, 19.5, "NVIDIA A100 80GB SXM datasheet: 2.04 TB/s, 19.5 TFLOP/s FP32"),
        new("A100", 1555, 19.5, "NVIDIA A100 40GB datasheet: 1.56 TB/s, 19.5 TFLOP/s FP32"),
        new("L40S", 864, 91.6, "NVIDIA L40S datasheet: 864 GB/s, 91.6 TFLOP/s FP32"),
    ];

    /// <summary>The peaks of a device by name, or null when the table lacks it.</summary>
    public static DevicePeak? Find(string deviceName) =>
        Table.FirstOrDefault(p => deviceName.Contains(p.Match, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// One kernel at one configuration. <see cref="MedianMs"/> is null when the device has no
/// implementation of the op. FloorMs = max(Bytes / bandwidth, Flops / FP32 rate) and
/// FractionOfFloor = FloorMs / MedianMs, both null where no peak figures apply (cpu, cuda-emu,
/// or an unknown card). Variant (mvq_score on CUDA): the kernel that ran; Fallback: true when the
/// fused kernel was asked for and the simple one ran (the reason is in Variant).
/// </summary>
internal sealed record KernelBenchRow(string Config, string Kernel, string Shape, double Bytes, double Flops, string BytesFormula, string FlopsFormula,
    double? MedianMs, int Samples, double? AchievedGBs, double? AchievedGflops, double? FloorMs, double? FractionOfFloor, string? Note,
    string? Variant = null, bool? Fallback = null);

/// <summary>Result of a kernel benchmark run: device, its peaks (null when not applicable), rows.</summary>
internal sealed record KernelBenchResult(string Device, string DeviceName, string Timing, DevicePeak? Peak, IReadOnlyList<KernelBenchRow> Rows);

/// <summary>Times the fused kernels and a calibration GEMM on a backend.</summary>
internal static class KernelBench
{
    /// <summary>
    /// Runs every kernel at every configuration: <paramref name="warmup"/> untimed calls, then
    /// <paramref name="repeats"/> timed samples, median reported. On a real GPU a sample is
    /// CUDA events around <c>inner</c> back-to-back calls (divided by inner, so launch gaps are
    /// counted as in training); elsewhere Stopwatch around one call followed by Synchronize.
    /// </summary>
    public static KernelBenchResult Run(Backend backend, IReadOnlyList<KernelBenchConfig> configs, int repeats = 20, int warmup = 3, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        var cuda = backend as CudaBackend;
        bool gpu = cuda is { IsEmulator: false };
        string deviceName = cuda?.Info.Name ?? Environment.ProcessorCount + " CPU threads";
        var peak = gpu ? DevicePeaks.Find(deviceName) : null;
        var rows = new List<KernelBenchRow>();
        foreach (var cfg in configs)
            foreach (var k in Kernels(cfg))
            {
                var row = Measure(backend, cuda, gpu, peak, cfg, k, repeats, warmup);
                log?.Invoke($"{cfg.Name,-18} {k.Op.Name,-17} {(row.MedianMs is double m ? $"{m,10:F4} ms" : "         - "),12}  floor {(row.FloorMs is double f ? $"{f:F4} ms" : "-")}  {(row.FractionOfFloor is double x ? $"{x:P1} of floor" : row.Note ?? "")}{(row.Variant is string v ? $"  [{v}]" : "")}");
                rows.Add(row);
            }
        return new KernelBenchResult(backend.Name, deviceName, gpu ? "cuda events" : "stopwatch + synchronize", peak, rows);
    }

    /// <summary>A kernel to time: op, attributes, input and output specs (I32 marked), floor counts and their formulas.</summary>
    private sealed record Spec(OpDef Op, object? Attrs, (int[]? Shape, bool Int, float Lo, float Hi)[] In, (int[] Shape, bool Int)[] Out,
        string Shape, double Bytes, double Flops, string BytesFormula, string FlopsFormula);

    private static IEnumerable<Spec> Kernels(KernelBenchConfig c)
    {
        const double W = 4; // bytes per element (F32 and I32)
        int B = c.B, L1 = c.L1, L2 = c.L2, D1 = c.D1, D2 = c.D2, K = c.K, J = c.J, F = c.F;
        int maskHi = D2 >= 31 ? int.MaxValue : 1 << D2;

        long n = (long)B * L1;
        yield return new Spec(VqOps.Lookup, null,
            [([(int)n, D1], false, -1, 1), ([K, D1], false, -1, 1)], [([(int)n], true), ([(int)n, D1], false)],
            $"z[{n},{D1}] codebook[{K},{D1}]",
            W * (n * D1 + (double)K * D1 + n + n * D1), 3.0 * n * K * D1,
            "4(N D + K D + N + N D), N = B L1: z and codebook read, idx and q written",
            "3 N K D: a subtract and a multiply-add per (row, code, dim); the argmin compares are not counted");

        double rows = (double)B * J * L2;
        yield return new Spec(MvqScoreOps.HiddenStats, null,
            [([B, L2, D2], false, -1, 1), ([B, J], true, 0, maskHi), ([F, D2], false, -1, 1), ([F], false, -1, 1)], [([F], false), ([F], false)],
            $"g[{B},{L2},{D2}] masks[{B},{J}] w1[{F},{D2}] -> mean,var[{F}]",
            W * ((double)B * L2 * D2 + (double)B * J + F * D2 + F + 2.0 * F), rows * F * (2.0 * D2 + 3),
            "4(B L2 D2 + B J + F D2 + F + 2F): g, masks, w1, b1 read, mean and var written",
            "B J L2 F (2 D2 + 3): a = w1 (m.g) + b1 per row, then sum and sum of squares");

        double mixFlops = c.IdentityMix ? 0 : 2.0 * L1 * L2 * D1 + (double)L1 * D1;
        yield return new Spec(MvqScoreOps.Score, new MvqScoreAttrs(0, J, 0.2f, c.IdentityMix),
            [
                ([B, L2, D2], false, -1, 1), ([B, J], true, 0, maskHi), ([F, D2], false, -1, 1), ([F], false, -1, 1),
                ([F], false, 0.5f, 1.5f), ([F], false, -1, 1), ([D1, F], false, -1, 1), ([D1], false, -1, 1),
                (c.IdentityMix ? null : [L1, L2], false, -1, 1), (c.IdentityMix ? null : [L1, D1], false, -1, 1), ([B, L1, D1], false, -1, 1),
            ],
            [([B], true), ([B], false), ([B, J], false)],
            $"g[{B},{L2},{D2}] masks[{B},{J}] F={F} D1={D1} L1={L1}{(c.IdentityMix ? " identity mix" : "")} -> dist[{B},{J}]",
            W * ((double)B * L2 * D2 + (double)B * J + F * D2 + 3.0 * F + (double)D1 * F + D1 + (c.IdentityMix ? 0 : (double)L1 * L2 + (double)L1 * D1)
                 + (double)B * L1 * D1 + 4.0 * B + (double)B * J),
            (double)B * J * (L2 * ((double)F * (2 * D2 + 3) + (double)D1 * (2 * F + 1)) + mixFlops + 3.0 * L1 * D1),
            "4(B L2 D2 + B J + F D2 + 3F + D1 F + D1 [+ L1 L2 + L1 D1] + B L1 D1 + 4B + B J): inputs read once, best index/dist read and written, dist written",
            "B J (L2 (F (2 D2 + 3) + D1 (2F + 1)) [+ 2 L1 L2 D1 + L1 D1] + 3 L1 D1): hidden layer, BN affine, LeakyReLU, output layer, mix, residual, squared mean");

        // Calibration: the encoder's 3x3 conv at the token grid as one GEMM (im2col rows).
        int gh = c.Height / 4, gw = c.Width / 4, cc = c.ConvChannels, inF = cc * 9;
        long gn = (long)B * gh * gw;
        yield return new Spec(LinearOps.Forward, null,
            [([(int)gn, inF], false, -1, 1), ([cc, inF], false, -1, 1), ([cc], false, -1, 1)], [([(int)gn, cc], false)],
            $"x[{gn},{inF}] w[{cc},{inF}]",
            W * (gn * inF + (double)cc * inF + cc + gn * cc), 2.0 * gn * inF * cc + (double)gn * cc,
            "4(N in + out in + out + N out): x, w, b read, y written",
            "2 N in out + N out");
    }

    private static KernelBenchRow Measure(Backend backend, CudaBackend? cuda, bool gpu, DevicePeak? peak, KernelBenchConfig cfg, Spec s, int repeats, int warmup)
    {
        KernelBenchRow Row(double? ms, int samples, string? note)
        {
            // mvq_score on CUDA: which kernel ran (the fused one may fall back to the simple one).
            string? variant = cuda is not null && s.Op == MvqScoreOps.Score && ms is not null ? CudaMvqScore.LastVariant : null;
            double? floor = peak is null ? null : Math.Max(s.Bytes / (peak.BandwidthGBs * 1e9), s.Flops / (peak.Fp32Tflops * 1e12)) * 1e3;
            return new KernelBenchRow(cfg.Name, s.Op.Name, s.Shape, s.Bytes, s.Flops, s.BytesFormula, s.FlopsFormula, ms, samples,
                ms is double a && a > 0 ? s.Bytes / (a * 1e-3) / 1e9 : null,
                ms is double b && b > 0 ? s.Flops / (b * 1e-3) / 1e9 : null,
                floor, floor is double f && ms is double m && m > 0 ? f / m : null, note,
                variant, variant is null ? null : variant != CudaMvqScore.ScoreKernel);
        }
        if (!s.Op.Supports(backend)) return Row(null, 0, $"no {backend.ImplKind} implementation");

        var rng = new Random(HashCode.Combine(cfg.Name.Length, s.Op.Name.Length, cfg.B));
        var ins = s.In.Select(t => t.Shape is null ? null! : Make(backend, rng, t.Shape, t.Int, t.Lo, t.Hi)).ToArray(); // null: an absent optional input
        var outs = s.Out.Select(t => Make(backend, rng, t.Shape, t.Int, 0, 1)).ToArray();
        try
        {
            // A running argmin needs bestDist = +inf before the first chunk.
            if (s.Op == MvqScoreOps.Score) outs[1].CopyFrom((ReadOnlySpan<float>)Enumerable.Repeat(float.PositiveInfinity, cfg.B).ToArray());
            void Once() => s.Op.Run(backend, ins, outs, s.Attrs);
            for (int i = 0; i < warmup; i++) Once();
            backend.Synchronize();
            var samples = new double[repeats];
            if (gpu)
            {
                // Enough calls per event pair that a sample spans ~0.2 ms or more (event resolution ~0.5 us).
                float probe = cuda!.TimeEvents(Once);
                int inner = (int)Math.Clamp(Math.Ceiling(0.2 / Math.Max(probe, 1e-3)), 1, 200);
                for (int r = 0; r < repeats; r++)
                    samples[r] = cuda.TimeEvents(() => { for (int i = 0; i < inner; i++) Once(); }) / (double)inner;
            }
            else
            {
                for (int r = 0; r < repeats; r++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    Once();
                    backend.Synchronize();
                    samples[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
            }
            Array.Sort(samples);
            double med = repeats % 2 == 1 ? samples[repeats / 2] : 0.5 * (samples[repeats / 2 - 1] + samples[repeats / 2]);
            return Row(med, repeats, gpu ? (peak is null ? "card not in the peak table" : null) : "no peaks off a GPU");
        }
        finally
        {
            foreach (var t in ins) t?.Dispose();
            foreach (var t in outs) t.Dispose();
        }
    }

    /// <summary>A tensor of random contents: floats uniform in [lo, hi), ints uniform in [lo, hi).</summary>
    private static Tensor Make(Backend backend, Random rng, int[] shape, bool isInt, float lo, float hi)
    {
        long count = 1; foreach (var d in shape) count *= d;
        if (isInt)
        {
            var a = new int[count];
            for (long i = 0; i < count; i++) a[i] = (int)lo + rng.Next(Math.Max(1, (int)hi - (int)lo));
            var t = backend.EmptyInt(shape);
            t.CopyFrom((ReadOnlySpan<int>)a);
            return t;
        }
        var f = new float[count];
        for (long i = 0; i < count; i++) f[i] = lo + (hi - lo) * (float)rng.NextDouble();
        var ft = backend.Empty(shape);
        ft.CopyFrom((ReadOnlySpan<float>)f);
        return ft;
    }
}
