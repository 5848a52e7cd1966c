// Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with a cubic polynomial kernel.
using System.Numerics.Tensors;
using MvqNative.Backends.Cpu;

namespace MvqNative.Metrics;

/// <summary>KID: mean and standard deviation of the unbiased MMD^2 over random subsets.</summary>
internal sealed record KidResult(double Mean, double Std, int Subsets, int SubsetSize);

/// <summary>
/// k(x, y) = (x.y / d + 1)^3. MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
/// - 2 sum_{i, j} k(x_i, y_j) / m^2 over subsets of m images drawn without replacement from each set
/// (fresh draw per subset, System.Random(seed)); Std is the population standard deviation over subsets.
/// </summary>
internal static class Kid
{
    public static KidResult Compute(FeatureSet real, FeatureSet fake, int subsets = 20, int subsetSize = 1000, int seed = 0)
    {
        if (real.Dim != fake.Dim) throw new ArgumentException($"feature widths differ: {real.Dim} and {fake.Dim}");
        int m = Math.Min(subsetSize, Math.Min(real.Count, fake.Count));
        if (m < 2) throw new ArgumentException("KID needs at least two images in each set");
        var rng = new Random(seed);
        var values = new double[subsets];
        for (int s = 0; s < subsets; s++)
        {
            var xi = Draw(rng, real.Count, m);
            var yi = Draw(rng, fake.Count, m);
            values[s] = Mmd2Unbiased(Gather(real, xi), Gather(fake, yi));
        }
        double mean = values.Average();
        double var = values.Sum(v => (v - mean) * (v - mean)) / subsets;
        return new KidResult(mean, Math.Sqrt(var), subsets, m);
    }

    /// <summary>Unbiased MMD^2 of two sets of the same size m with the cubic polynomial kernel.</summary>
    public static double Mmd2Unbiased(FeatureSet x, FeatureSet y)
    {
        if (x.Count != y.Count || x.Dim != y.Dim) throw new ArgumentException("MMD: sets differ in size or width");
        int m = x.Count;
        double kxx = KernelSum(x, x, true), kyy = KernelSum(y, y, true), kxy = KernelSum(x, y, false);
        return (kxx + kyy) / ((double)m * (m - 1)) - 2 * kxy / ((double)m * m);
    }

    private static double KernelSum(FeatureSet a, FeatureSet b, bool skipDiagonal)
    {
        int n = a.Count, d = a.Dim;
        var partial = new double[n];
        CpuParallel.For(n, 16, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                var ai = a.Row(i);
                double acc = 0;
                for (int j = 0; j < b.Count; j++)
                {
                    if (skipDiagonal && i == j) continue;
                    double t = TensorPrimitives.Dot(ai, b.Row(j)) / (double)d + 1;
                    acc += t * t * t;
                }
                partial[i] = acc;
            }
        });
        double sum = 0;
        foreach (var p in partial) sum += p; // fixed order: the same sum for any thread count
        return sum;
    }

    private static int[] Draw(Random rng, int n, int m)
    {
        var idx = Enumerable.Range(0, n).ToArray();
        for (int i = 0; i < m; i++) { int j = rng.Next(i, n); (idx[i], idx[j]) = (idx[j], idx[i]); }
        return idx[..m];
    }

    private static FeatureSet Gather(FeatureSet f, int[] rows)
    {
        var v = new float[rows.Length * f.Dim];
        for (int i = 0; i < rows.Length; i++) f.Row(rows[i]).CopyTo(v.AsSpan(i * f.Dim, f.Dim));
        return new FeatureSet(v, rows.Length, f.Dim);
    }
}
