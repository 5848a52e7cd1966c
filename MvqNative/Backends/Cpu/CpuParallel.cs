namespace MvqNative.Backends.Cpu;

/// <summary>Chunked parallel loops sized so that small work stays on the calling thread.</summary>
internal static class CpuParallel
{
    /// <summary>Worker threads used by CPU kernels (MVQ_THREADS or the core count).</summary>
    public static int Threads { get; set; } =
        int.TryParse(Environment.GetEnvironmentVariable("MVQ_THREADS"), out var t) && t > 0 ? t : Environment.ProcessorCount;

    /// <summary>Runs body(start, end) over [0, n) in chunks of at least <paramref name="grain"/> items.</summary>
    public static void For(int n, int grain, Action<int, int> body)
    {
        if (n <= 0) return;
        int chunks = Math.Min(Threads * 4, Math.Max(1, n / Math.Max(1, grain)));
        if (chunks <= 1 || Threads <= 1) { body(0, n); return; }
        int size = (n + chunks - 1) / chunks;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Threads }, ci =>
        {
            int s = ci * size, e = Math.Min(n, s + size);
            if (s < e) body(s, e);
        });
    }
}
