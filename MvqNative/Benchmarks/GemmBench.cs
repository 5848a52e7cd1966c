// GEMM throughput benchmark: the managed SIMD kernel against the system OpenBLAS on square
// matrices, same thread count for both, median of repeats. `mvq bench gemm` prints its rows.
using System.Diagnostics;
using System.Runtime.InteropServices;
using MvqNative.Backends.Cpu;

namespace MvqNative.Benchmarks;

/// <summary>One size: GFLOP/s (2*n^3 / seconds, median) of ours and of OpenBLAS (null when not loaded), Ratio = ours / OpenBLAS.</summary>
internal sealed record GemmBenchRow(int Size, double OursGflops, double? OpenBlasGflops, double? Ratio);

/// <summary>Square SGEMM benchmark (C = A * B, n x n, no transposes, beta = 0).</summary>
internal static unsafe class GemmBench
{
    /// <summary>
    /// Times the managed kernel and, when available, OpenBLAS at each size, with
    /// <see cref="CpuParallel.Threads"/> threads for both; one warm-up call each, then the median of
    /// <paramref name="repeats"/> timed calls (the two alternate, so drifting machine load hits both alike).
    /// </summary>
    public static IReadOnlyList<GemmBenchRow> Run(int[] sizes, int repeats, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        int threads = CpuParallel.Threads;
        bool blas = SystemBlas.IsAvailable;
        log?.Invoke($"managed: {CpuGemm.ProviderDescriptionFor(GemmProvider.Managed)}");
        log?.Invoke(blas ? $"openblas: {SystemBlas.LibraryPath} core={SystemBlas.CoreName ?? "?"} threads={threads}{(SystemBlas.CanSetThreads ? "" : " (thread count not settable)")}" : "openblas: not available");
        var rows = new List<GemmBenchRow>();
        foreach (int n in sizes)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
            long count = (long)n * n;
            float* a = Alloc(count), b = Alloc(count), c = Alloc(count);
            try
            {
                var rng = new Random(n);
                for (long i = 0; i < count; i++) { a[i] = (float)(rng.NextDouble() * 2 - 1); b[i] = (float)(rng.NextDouble() * 2 - 1); }
                var ours = new double[repeats];
                var theirs = new double[repeats];
                Action runOurs = () => CpuGemm.SgemmManaged(CpuGemm.Isa, threads, false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);
                Action runBlas = () => SystemBlas.Sgemm(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n);
                runOurs();
                if (blas) runBlas();
                for (int r = 0; r < repeats; r++)
                {
                    ours[r] = Time(runOurs);
                    if (blas) theirs[r] = Time(runBlas);
                }
                double flop = 2.0 * n * n * n;
                double g = flop / Median(ours) / 1e9;
                double? gb = blas ? flop / Median(theirs) / 1e9 : null;
                var row = new GemmBenchRow(n, g, gb, gb is double x && x > 0 ? g / x : null);
                log?.Invoke($"n={n,5}  ours {g,8:F1} GFLOP/s   openblas {(gb is double v ? v.ToString("F1") : "-"),8}   ratio {(row.Ratio is double q ? q.ToString("F2") : "-")}");
                rows.Add(row);
            }
            finally { NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(b); NativeMemory.AlignedFree(c); }
        }
        return rows;
    }

    private static float* Alloc(long count) => (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);

    private static double Time(Action f)
    {
        long t0 = Stopwatch.GetTimestamp();
        f();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private static double Median(double[] xs)
    {
        var s = (double[])xs.Clone();
        Array.Sort(s);
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }
}
