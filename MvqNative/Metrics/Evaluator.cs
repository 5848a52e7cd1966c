using MvqNative.Data;
using MvqNative.Models;

namespace MvqNative.Metrics;

/// <summary>Usage of one code segment (k1, k2, w) over a split.</summary>
internal sealed record SegmentReport(int Vocabulary, double UsedFraction, double Perplexity);

/// <summary>The figures of `mvq eval`; <c>Distribution</c> (rFID, KID, precision/recall, F8, F1/8, perceptual) when a feature network was given.</summary>
internal sealed record EvalReport(string Dataset, int Images, double Mse, double Psnr, double Ssim,
    double CodebookUsage, double Perplexity, IReadOnlyDictionary<string, SegmentReport> Codes, double Seconds)
{
    /// <summary>Tokens and bits per instance of the model's code.</summary>
    public CodeBudget? Budget { get; init; }
    public DistributionReport? Distribution { get; init; }
}

/// <summary>Runs a model in evaluation mode over a dataset and measures reconstructions and code usage.</summary>
internal static class Evaluator
{
    /// <summary>
    /// Reconstruction figures and code usage over the first <paramref name="limit"/> images; with a feature
    /// network, also the distribution figures of the reconstructions against the originals (rFID etc.).
    /// </summary>
    public static EvalReport Run(Autoencoder model, ImageDataset data, int batch = 256, int? limit = null, Action<int, int>? progress = null,
        FeatureNet? features = null, DistributionOptions? options = null)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int n = Math.Min(data.Count, limit ?? int.MaxValue);
        var segs = model.Bottleneck.Segments;
        var usage = segs.ToDictionary(s => s.Name, s => new CodeUsage(s.Vocabulary));
        int per = data.Channels * data.Height * data.Width;
        double mse = 0, psnr = 0, ssim = 0;
        using var session = new InferenceSession(model, batch);
        float[]? allOrig = features is null ? null : new float[(long)n * per];
        float[]? allRec = features is null ? null : new float[(long)n * per];
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            var (orig, recon, codes) = session.Run(data, start, b);
            if (allOrig != null) { orig.AsSpan(0, b * per).CopyTo(allOrig.AsSpan(start * per)); recon.AsSpan(0, b * per).CopyTo(allRec!.AsSpan(start * per)); }
            for (int i = 0; i < b; i++)
            {
                var o = orig.AsSpan(i * per, per);
                var r = recon.AsSpan(i * per, per);
                double m = ImageMetrics.Mse(o, r);
                mse += m;
                psnr += ImageMetrics.Psnr(m);
                ssim += ImageMetrics.Ssim(o, r, data.Channels, data.Height, data.Width);
                var code = codes.AsSpan(i * session.CodeLength, session.CodeLength);
                foreach (var s in segs)
                    for (int k = 0; k < s.Length; k++) usage[s.Name].Add(code[s.Start + k]);
            }
            progress?.Invoke(Math.Min(n, start + b), n);
        }
        var reports = usage.ToDictionary(kv => kv.Key, kv => new SegmentReport(kv.Value.Vocabulary, kv.Value.UsedFraction, kv.Value.Perplexity));
        var k1 = usage["k1"];
        DistributionReport? dist = null;
        if (features != null)
        {
            var fc = features.Config;
            if (fc.Channels != data.Channels || fc.Height != data.Height || fc.Width != data.Width)
                throw new ArgumentException($"the feature network takes {fc.Channels}x{fc.Height}x{fc.Width} images, the data are {data.Channels}x{data.Height}x{data.Width}");
            dist = DistributionMetrics.Score(features, allOrig!, n, allRec!, n, paired: true, options);
        }
        return new EvalReport(data.Name, n, mse / n, psnr / n, ssim / n, k1.UsedFraction, k1.Perplexity, reports, sw.Elapsed.TotalSeconds)
        { Budget = CodeBudget.Of(segs), Distribution = dist };
    }
}
