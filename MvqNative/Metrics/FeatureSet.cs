// A set of feature vectors (one row per image) and its float64 mean and covariance.
namespace MvqNative.Metrics;

/// <summary>Feature vectors of a set of images: <c>Values</c> [Count, Dim] row-major.</summary>
internal sealed class FeatureSet
{
    public FeatureSet(float[] values, int count, int dim)
    {
        if (count < 0 || dim < 1 || values.Length != (long)count * dim)
            throw new ArgumentException($"feature set: {values.Length} values for [{count}, {dim}]");
        Values = values; Count = count; Dim = dim;
    }

    public float[] Values { get; }
    public int Count { get; }
    public int Dim { get; }

    public ReadOnlySpan<float> Row(int i) => Values.AsSpan(i * Dim, Dim);

    /// <summary>The first <paramref name="n"/> rows (all when n >= Count).</summary>
    public FeatureSet Take(int n) => n >= Count ? this : new FeatureSet(Values.AsSpan(0, n * Dim).ToArray(), n, Dim);

    /// <summary>Mean [Dim] and covariance [Dim, Dim] in float64, the covariance with the N - 1 divisor (numpy.cov).</summary>
    public (double[] Mean, double[] Cov) Statistics()
    {
        if (Count < 2) throw new ArgumentException("feature statistics need at least two images");
        int d = Dim;
        var mean = new double[d];
        for (int i = 0; i < Count; i++)
        {
            var r = Row(i);
            for (int j = 0; j < d; j++) mean[j] += r[j];
        }
        for (int j = 0; j < d; j++) mean[j] /= Count;
        var cov = new double[d * d];
        var c = new double[d];
        for (int i = 0; i < Count; i++)
        {
            var r = Row(i);
            for (int j = 0; j < d; j++) c[j] = r[j] - mean[j];
            for (int a = 0; a < d; a++)
            {
                double ca = c[a];
                int o = a * d;
                for (int b = a; b < d; b++) cov[o + b] += ca * c[b];
            }
        }
        for (int a = 0; a < d; a++)
            for (int b = a; b < d; b++) { cov[a * d + b] /= Count - 1; cov[b * d + a] = cov[a * d + b]; }
        return (mean, cov);
    }
}
