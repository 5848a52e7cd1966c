// Precision and recall for distributions (Sajjadi et al. 2018) and its F-beta summaries F8 and F1/8.
using MvqNative.Quantizers;

namespace MvqNative.Metrics;

/// <summary>The PRD curve (averaged over runs) and its summaries: F8 (weighs recall) and F1/8 (weighs precision).</summary>
internal sealed record PrdResult(double F8, double F1_8, double[] Precision, double[] Recall, int Clusters, int Runs);

/// <summary>
/// Both sets are quantized together into <c>clusters</c> k-means clusters (k-means++ seeding, Lloyd
/// iterations, run r seeded with r; the paper's code used mini-batch k-means); P (real) and Q
/// (generated) are the cluster histograms, each summing to 1. For slopes lambda = tan(theta), theta on
/// <c>angles</c> equally spaced points of [1e-10, pi/2 - 1e-10]: precision(lambda) = sum_i min(lambda P_i, Q_i),
/// recall(lambda) = precision(lambda) / lambda, both clipped to [0, 1], averaged over runs.
/// F_beta(p, r) = (1 + beta^2) p r / (beta^2 p + r + 1e-10); F8 = max over the curve of F_8(precision, recall),
/// F1/8 = max of F_8(recall, precision). The sets are cut to the same size first (balanced).
/// </summary>
internal static class Prd
{
    public static PrdResult Compute(FeatureSet real, FeatureSet fake, int clusters = 20, int angles = 1001, int runs = 10, int iterations = 10)
    {
        if (real.Dim != fake.Dim) throw new ArgumentException($"feature widths differ: {real.Dim} and {fake.Dim}");
        int n = Math.Min(real.Count, fake.Count);
        if (n < clusters) throw new ArgumentException($"PRD with {clusters} clusters needs at least {clusters} images in each set");
        int d = real.Dim;
        var both = new float[2 * n * d];
        real.Values.AsSpan(0, n * d).CopyTo(both);
        fake.Values.AsSpan(0, n * d).CopyTo(both.AsSpan(n * d));
        var p = new double[angles]; var r = new double[angles];
        for (int run = 0; run < runs; run++)
        {
            var centres = KMeans.Fit(both, 2 * n, d, clusters, iterations, new Random(run));
            var hp = new double[clusters]; var hq = new double[clusters];
            for (int i = 0; i < 2 * n; i++)
            {
                int c = Nearest(both.AsSpan(i * d, d), centres, clusters, d);
                if (i < n) hp[c] += 1.0 / n; else hq[c] += 1.0 / n;
            }
            var (cp, cr) = Curve(hp, hq, angles);
            for (int a = 0; a < angles; a++) { p[a] += cp[a] / runs; r[a] += cr[a] / runs; }
        }
        var (f8, f18) = FScores(p, r);
        return new PrdResult(f8, f18, p, r, clusters, runs);
    }

    /// <summary>The PRD curve of a reference histogram <paramref name="real"/> and a model histogram <paramref name="fake"/> (each summing to 1).</summary>
    public static (double[] Precision, double[] Recall) Curve(double[] real, double[] fake, int angles = 1001)
    {
        const double eps = 1e-10;
        var p = new double[angles]; var r = new double[angles];
        for (int a = 0; a < angles; a++)
        {
            double theta = eps + (Math.PI / 2 - 2 * eps) * a / (angles - 1);
            double slope = Math.Tan(theta), s = 0;
            for (int i = 0; i < real.Length; i++) s += Math.Min(slope * real[i], fake[i]);
            p[a] = Math.Clamp(s, 0, 1);
            r[a] = Math.Clamp(s / slope, 0, 1);
        }
        return (p, r);
    }

    /// <summary>(F8, F1/8): the largest F_8(precision, recall) and F_8(recall, precision) on the curve.</summary>
    public static (double F8, double F1_8) FScores(double[] precision, double[] recall, double beta = 8)
    {
        double f = 0, g = 0, b2 = beta * beta;
        for (int a = 0; a < precision.Length; a++)
        {
            double pr = precision[a], rc = recall[a];
            f = Math.Max(f, (1 + b2) * pr * rc / (b2 * pr + rc + 1e-10));
            g = Math.Max(g, (1 + b2) * rc * pr / (b2 * rc + pr + 1e-10));
        }
        return (f, g);
    }

    private static int Nearest(ReadOnlySpan<float> x, float[] centres, int k, int d)
    {
        int best = 0; double bd = double.PositiveInfinity;
        for (int c = 0; c < k; c++)
        {
            double s = 0;
            for (int j = 0; j < d; j++) { double t = (double)x[j] - centres[c * d + j]; s += t * t; }
            if (s < bd) { bd = s; best = c; }
        }
        return best;
    }
}
