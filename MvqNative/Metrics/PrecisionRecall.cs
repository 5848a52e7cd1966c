// Improved precision and recall (Kynkaanniemi et al. 2019): k-nearest-neighbour manifolds in feature space.
using System.Numerics.Tensors;
using MvqNative.Backends.Cpu;

namespace MvqNative.Metrics;

/// <summary>Precision: share of generated images inside the real manifold; recall: share of real images inside the generated one.</summary>
internal sealed record PrecisionRecallResult(double Precision, double Recall, int K);

/// <summary>
/// The manifold of a set is the union of balls around its points, each ball's radius the distance to
/// the point's k-th nearest neighbour in the same set (itself excluded). A point is inside when it lies
/// within (&lt;=) some ball. Squared Euclidean distances, accumulated in float (SIMD) and compared in float64.
/// </summary>
internal static class PrecisionRecall
{
    public static PrecisionRecallResult Compute(FeatureSet real, FeatureSet fake, int k = 3)
    {
        if (real.Dim != fake.Dim) throw new ArgumentException($"feature widths differ: {real.Dim} and {fake.Dim}");
        if (real.Count <= k || fake.Count <= k) throw new ArgumentException($"precision/recall with k = {k} needs more than {k} images in each set");
        var rr = Radii(real, k);
        var fr = Radii(fake, k);
        return new PrecisionRecallResult(Coverage(real, rr, fake), Coverage(fake, fr, real), k);
    }

    /// <summary>Squared distance of each point to its k-th nearest neighbour in the same set (the point itself excluded).</summary>
    public static double[] Radii(FeatureSet x, int k)
    {
        var r = new double[x.Count];
        CpuParallel.For(x.Count, 16, (s, e) =>
        {
            var best = new double[k]; // the k smallest squared distances so far, ascending
            var tmp = new float[x.Dim];
            for (int i = s; i < e; i++)
            {
                Array.Fill(best, double.PositiveInfinity);
                var xi = x.Row(i);
                for (int j = 0; j < x.Count; j++)
                {
                    if (j == i) continue;
                    double d = Sq(xi, x.Row(j), tmp);
                    if (d >= best[k - 1]) continue;
                    int p = k - 1;
                    while (p > 0 && best[p - 1] > d) { best[p] = best[p - 1]; p--; }
                    best[p] = d;
                }
                r[i] = best[k - 1];
            }
        });
        return r;
    }

    /// <summary>Fraction of <paramref name="query"/> points inside the manifold of <paramref name="support"/> with squared radii <paramref name="radii"/>.</summary>
    public static double Coverage(FeatureSet support, double[] radii, FeatureSet query)
    {
        var inside = new bool[query.Count];
        CpuParallel.For(query.Count, 16, (s, e) =>
        {
            var tmp = new float[support.Dim];
            for (int i = s; i < e; i++)
            {
                var q = query.Row(i);
                for (int j = 0; j < support.Count; j++)
                    if (Sq(q, support.Row(j), tmp) <= radii[j]) { inside[i] = true; break; }
            }
        });
        return inside.Count(b => b) / (double)query.Count;
    }

    private static double Sq(ReadOnlySpan<float> a, ReadOnlySpan<float> b, float[] tmp)
    {
        TensorPrimitives.Subtract(a, b, tmp);
        return TensorPrimitives.Dot<float>(tmp, tmp);
    }
}
