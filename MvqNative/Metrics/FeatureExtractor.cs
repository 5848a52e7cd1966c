// Runs the feature network over image sets: penultimate features (FID, KID, precision/recall, PRD)
// and the LPIPS-like perceptual distance between paired images.
using MvqNative.Tensors;

namespace MvqNative.Metrics;

/// <summary>
/// Feature extraction in evaluation mode. Pixels are clamped to [0, 1] first (decoder outputs are
/// not squashed; a saved PNG would be clamped the same way).
/// </summary>
internal static class FeatureExtractor
{
    /// <summary>Penultimate features of n images [n, C, H, W].</summary>
    public static FeatureSet Extract(FeatureNet net, ReadOnlySpan<float> images, int n, int batch = 256)
        => Score(net, images, default, n, batch).Real;

    /// <summary>
    /// Features of <paramref name="real"/> and (when not empty) <paramref name="fake"/>, and the perceptual
    /// distance of each pair (real_i, fake_i): sum over the five conv layers l of the mean over positions of
    /// |a_l(x)/|a_l(x)| - a_l(y)/|a_l(y)||^2, the norms over channels (LPIPS's form with every learned
    /// per-channel weight equal to 1: this network has no learned linear calibration layers).
    /// </summary>
    public static (FeatureSet Real, FeatureSet? Fake, double[]? Perceptual) Score(FeatureNet net, ReadOnlySpan<float> real, ReadOnlySpan<float> fake, int n, int batch = 256)
    {
        var c = net.Config;
        int per = c.Channels * c.Height * c.Width, d = net.FeatureDim;
        if (real.Length != (long)n * per) throw new ArgumentException($"feature extraction: {real.Length} values for {n} images of {c.Channels}x{c.Height}x{c.Width}");
        bool pair = !fake.IsEmpty;
        if (pair && fake.Length != real.Length) throw new ArgumentException("feature extraction: the two image sets differ in size");
        net.SetTraining(false);
        var fr = new float[(long)n * d];
        var ff = pair ? new float[(long)n * d] : null;
        var dist = pair ? new double[n] : null;
        var host = new float[batch * per];
        for (int s = 0; s < n; s += batch)
        {
            int b = Math.Min(batch, n - s);
            var realMaps = Run(net, real.Slice(s * per, b * per), host, b, fr.AsSpan(s * d, b * d), pair);
            if (!pair) continue;
            var fakeMaps = Run(net, fake.Slice(s * per, b * per), host, b, ff.AsSpan(s * d, b * d), true);
            for (int i = 0; i < b; i++)
            {
                double t = 0;
                for (int l = 0; l < realMaps!.Count; l++) t += LayerDistance(realMaps[l], fakeMaps![l], i);
                dist![s + i] = t;
            }
        }
        return (new FeatureSet(fr, n, d), pair ? new FeatureSet(ff!, n, d) : null, dist);
    }

    private sealed record Map(float[] Values, int Channels, int Positions);

    private static List<Map>? Run(FeatureNet net, ReadOnlySpan<float> images, float[] host, int b, Span<float> featuresOut, bool maps)
    {
        var c = net.Config;
        var src = host.AsSpan(0, images.Length);
        for (int i = 0; i < images.Length; i++) src[i] = Math.Clamp(images[i], 0f, 1f);
        using var x = net.Backend.FromArray(src, b, c.Channels, c.Height, c.Width);
        net.Forward(x);
        net.Features.ToArray().AsSpan(0, featuresOut.Length).CopyTo(featuresOut);
        if (!maps) return null;
        return net.Maps.Select(m => new Map(m.ToArray(), m.Dim(1), m.Dim(2) * m.Dim(3))).ToList();
    }

    private static double LayerDistance(Map x, Map y, int image)
    {
        int ch = x.Channels, pos = x.Positions;
        int o = image * ch * pos;
        double total = 0;
        for (int p = 0; p < pos; p++)
        {
            double nx = 0, ny = 0;
            for (int k = 0; k < ch; k++) { double a = x.Values[o + k * pos + p], b = y.Values[o + k * pos + p]; nx += a * a; ny += b * b; }
            nx = Math.Sqrt(nx) + 1e-10; ny = Math.Sqrt(ny) + 1e-10;
            for (int k = 0; k < ch; k++) { double t = x.Values[o + k * pos + p] / nx - y.Values[o + k * pos + p] / ny; total += t * t; }
        }
        return total / pos;
    }
}
