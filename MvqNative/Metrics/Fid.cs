// Frechet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017).
namespace MvqNative.Metrics;

/// <summary>
/// FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64. The trace term is computed as
/// tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the same value in exact arithmetic (S1 S2 is similar to that
/// symmetric matrix), but every square root is of a symmetric PSD matrix, taken by symmetric
/// eigendecomposition, so there is no complex part to discard as with a general sqrtm.
/// </summary>
internal static class Fid
{
    public static double Compute(FeatureSet real, FeatureSet fake)
    {
        if (real.Dim != fake.Dim) throw new ArgumentException($"feature widths differ: {real.Dim} and {fake.Dim}");
        var (m1, s1) = real.Statistics();
        var (m2, s2) = fake.Statistics();
        return FromStatistics(m1, s1, m2, s2);
    }

    public static double FromStatistics(double[] mu1, double[] s1, double[] mu2, double[] s2)
    {
        int d = mu1.Length;
        if (mu2.Length != d || s1.Length != d * d || s2.Length != d * d) throw new ArgumentException("FID: statistics of different widths");
        double diff = 0, tr = 0;
        for (int i = 0; i < d; i++) { double t = mu1[i] - mu2[i]; diff += t * t; tr += s1[i * d + i] + s2[i * d + i]; }
        return diff + tr - 2 * TraceSqrtProduct(s1, s2, d);
    }

    /// <summary>tr((S1 S2)^(1/2)) for symmetric PSD S1, S2 [d, d].</summary>
    public static double TraceSqrtProduct(double[] s1, double[] s2, int d)
    {
        var r = SymmetricEigen.SqrtPsd(s1, d);
        var m = Multiply(Multiply(r, s2, d), r, d);
        var (values, _) = SymmetricEigen.Decompose(m, d);
        double t = 0;
        foreach (var v in values) t += Math.Sqrt(Math.Max(v, 0));
        return t;
    }

    internal static double[] Multiply(double[] a, double[] b, int d)
    {
        var c = new double[d * d];
        for (int i = 0; i < d; i++)
            for (int k = 0; k < d; k++)
            {
                double aik = a[i * d + k];
                if (aik == 0) continue;
                for (int j = 0; j < d; j++) c[i * d + j] += aik * b[k * d + j];
            }
        return c;
    }
}
