using MvqNative.Data;
using MvqNative.Models;

namespace MvqNative.Metrics;

/// <summary>Usage of one code segment (k1, k2, w) over a split.</summary>
public sealed record SegmentReport(int Vocabulary, double UsedFraction, double Perplexity);

/// <summary>The figures of `mvq eval`.</summary>
public sealed record EvalReport(string Dataset, int Images, double Mse, double Psnr, double Ssim,
    double CodebookUsage, double Perplexity, IReadOnlyDictionary<string, SegmentReport> Codes, double Seconds);

/// <summary>Runs a model in evaluation mode over a dataset and measures reconstructions and code usage.</summary>
public static class Evaluator
{
    public static EvalReport Run(Autoencoder model, ImageDataset data, int batch = 256, int? limit = null, Action<int, int>? progress = null)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int n = Math.Min(data.Count, limit ?? int.MaxValue);
        var segs = model.Bottleneck.Segments;
        var usage = segs.ToDictionary(s => s.Name, s => new CodeUsage(s.Vocabulary));
        int per = data.Channels * data.Height * data.Width;
        double mse = 0, psnr = 0, ssim = 0;
        using var session = new InferenceSession(model, batch);
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            var (orig, recon, codes) = session.Run(data, start, b);
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
        return new EvalReport(data.Name, n, mse / n, psnr / n, ssim / n, k1.UsedFraction, k1.Perplexity, reports, sw.Elapsed.TotalSeconds);
    }
}
