// Host k-means (k-means++ seeding, Lloyd iterations) used to initialise codebooks.
using MvqNative.Backends.Cpu;

namespace MvqNative.Quantizers;

/// <summary>k-means on the host in double precision, deterministic for a given generator.</summary>
internal static class KMeans
{
    /// <summary>
    /// Clusters the rows of <paramref name="x"/> [n, d] into <paramref name="k"/> centres [k, d].
    /// Seeding is k-means++; an empty cluster keeps its previous centre. With fewer distinct
    /// points than k, the extra centres are copies of drawn points.
    /// </summary>
    public static float[] Fit(ReadOnlySpan<float> x, int n, int d, int k, int iterations, Random rng)
    {
        if (n < 1) throw new ArgumentException("k-means needs at least one point");
        if (x.Length != n * d) throw new ArgumentException($"k-means: {x.Length} values for [{n},{d}]");
        var pts = x.ToArray();
        var centres = new float[k * d];
        var dist = new double[n];
        int first = rng.Next(n);
        Array.Copy(pts, first * d, centres, 0, d);
        for (int i = 0; i < n; i++) dist[i] = Sq(pts, i * d, centres, 0, d);
        for (int c = 1; c < k; c++)
        {
            double total = 0;
            foreach (var v in dist) total += v;
            int pick = n - 1;
            if (total > 0)
            {
                double r = rng.NextDouble() * total, acc = 0;
                for (int i = 0; i < n; i++) { acc += dist[i]; if (acc > r) { pick = i; break; } }
            }
            else pick = rng.Next(n);
            Array.Copy(pts, pick * d, centres, c * d, d);
            for (int i = 0; i < n; i++) dist[i] = Math.Min(dist[i], Sq(pts, i * d, centres, c * d, d));
        }

        var assign = new int[n];
        for (int it = 0; it < iterations; it++)
        {
            Assign(pts, n, d, centres, k, assign);
            var sums = new double[k * d];
            var counts = new int[k];
            for (int i = 0; i < n; i++)
            {
                int a = assign[i]; counts[a]++;
                for (int j = 0; j < d; j++) sums[a * d + j] += pts[i * d + j];
            }
            for (int c = 0; c < k; c++)
                if (counts[c] > 0)
                    for (int j = 0; j < d; j++) centres[c * d + j] = (float)(sums[c * d + j] / counts[c]);
        }
        return centres;
    }

    /// <summary>Mean squared distance of each row to its nearest centre (the quantization error).</summary>
    public static double Error(ReadOnlySpan<float> x, int n, int d, ReadOnlySpan<float> centres, int k)
    {
        var pts = x.ToArray(); var c = centres.ToArray();
        var assign = new int[n];
        Assign(pts, n, d, c, k, assign);
        double s = 0;
        for (int i = 0; i < n; i++) s += Sq(pts, i * d, c, assign[i] * d, d);
        return s / Math.Max(1, (long)n * d);
    }

    private static double Sq(float[] a, int ao, float[] b, int bo, int d)
    {
        double s = 0;
        for (int j = 0; j < d; j++) { double t = (double)a[ao + j] - b[bo + j]; s += t * t; }
        return s;
    }

    private static void Assign(float[] pts, int n, int d, float[] centres, int k, int[] assign)
    {
        CpuParallel.For(n, Math.Max(1, 65536 / Math.Max(1, k * d)), (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                double best = double.PositiveInfinity; int arg = 0;
                for (int c = 0; c < k; c++)
                {
                    double v = Sq(pts, i * d, centres, c * d, d);
                    if (v < best) { best = v; arg = c; }
                }
                assign[i] = arg;
            }
        });
    }
}
