// The feature-space figures of `mvq eval`: FID, KID, precision/recall, PRD F-scores and (for paired
// images) the perceptual distance, all from one feature network.
namespace MvqNative.Metrics;

/// <summary>Sizes and seeds of the distribution metrics.</summary>
internal sealed record DistributionOptions(int KidSubsets = 20, int KidSubsetSize = 1000, int PrLimit = 5000, int K = 3,
    int PrdClusters = 20, int PrdRuns = 10, int Batch = 256, int Seed = 0);

/// <summary>Feature-space comparison of a real and a generated (or reconstructed) image set.</summary>
/// Precision/recall need more than K images per set and PRD at least PrdClusters; below that they are null.
internal sealed record DistributionReport(int Images, double Fid, double Kid, double KidStd, double? Precision, double? Recall,
    double? F8, double? F1_8, double? Perceptual, int PrImages, string Network);

internal static class DistributionMetrics
{
    /// <summary>
    /// Scores <paramref name="fake"/> against <paramref name="real"/> (n images each, [n, C, H, W]); with
    /// <paramref name="paired"/>, fake_i is the reconstruction of real_i and the mean perceptual distance is reported.
    /// Precision/recall and PRD use the first PrLimit images of each set (their cost grows as n^2).
    /// </summary>
    public static DistributionReport Score(FeatureNet net, ReadOnlySpan<float> real, int nReal, ReadOnlySpan<float> fake, int nFake,
        bool paired, DistributionOptions? options = null)
    {
        var o = options ?? new DistributionOptions();
        FeatureSet fr, ff; double? perceptual = null;
        if (paired)
        {
            if (nReal != nFake) throw new ArgumentException("paired scoring needs as many reconstructions as originals");
            var (a, b, d) = FeatureExtractor.Score(net, real, fake, nReal, o.Batch);
            fr = a; ff = b!; perceptual = d!.Average();
        }
        else
        {
            fr = FeatureExtractor.Extract(net, real, nReal, o.Batch);
            ff = FeatureExtractor.Extract(net, fake, nFake, o.Batch);
        }
        double fid = Fid.Compute(fr, ff);
        var kid = Kid.Compute(fr, ff, o.KidSubsets, o.KidSubsetSize, o.Seed);
        int m = Math.Min(o.PrLimit, Math.Min(fr.Count, ff.Count));
        var pr = m > o.K ? PrecisionRecall.Compute(fr.Take(m), ff.Take(m), o.K) : null;
        var prd = m >= o.PrdClusters ? Prd.Compute(fr.Take(m), ff.Take(m), o.PrdClusters, runs: o.PrdRuns) : null;
        return new DistributionReport(Math.Min(fr.Count, ff.Count), fid, kid.Mean, kid.Std, pr?.Precision, pr?.Recall, prd?.F8, prd?.F1_8, perceptual, m, net.ToString());
    }
}
