// ImageGenerator.cs: codes from the prior, then images from the autoencoder's decoder, timed apart.
using MvqNative.Models;
using MvqNative.Mvq;

namespace MvqNative.Prior;

/// <summary>How an MVQ sample gets its mask: the prior's w (an index into the evaluation bank) or a fresh random mask.</summary>
internal enum MaskSource { Prior, Random }

/// <summary>Generated images with their codes and the time of each half.</summary>
internal sealed record Generated(int[] Codes, uint[]? MaskWords, float[] Images, double PriorMs, double DecodeMs)
{
    /// <summary>Prior milliseconds per op kind (<see cref="PriorSampler.ProfileNames"/>) when MVQ_SAMPLE_PROFILE=1.</summary>
    public double[]? PriorProfile { get; init; }

    /// <summary>Process CPU milliseconds of the prior half (<see cref="PriorSampler.LastCpuMilliseconds"/>).</summary>
    public double PriorCpuMs { get; init; }
}

internal static class ImageGenerator
{
    /// <summary>
    /// Samples <paramref name="count"/> codes from the prior, <paramref name="batch"/> sequences at a time, and decodes
    /// them. With <see cref="MaskSource.Random"/> (MVQ only) image i decodes with the mask word
    /// MaskHash.Bank(seed, 0, count, D2, p)[i] (each bit kept with probability 1 - p) instead of EvalBank[w].
    /// A given sampler (of this prior) is reused, so its weight packs and buffers carry over between runs as in a
    /// benchmark; without one, a fresh sampler serves this call.
    /// </summary>
    public static Generated Run(Autoencoder ae, TransformerPrior prior, int count, int batch, SamplingOptions opt, MaskSource mask = MaskSource.Prior, PriorSampler? sampler = null)
    {
        var mvq = ae.Bottleneck as MvqBottleneck;
        if (mask == MaskSource.Random && mvq is null) throw new MvqUsageException("--mask random needs an MVQ model (a VQ code has no mask)");
        using var own = sampler is null ? new PriorSampler(prior) : null;
        sampler ??= own!;
        var codes = sampler.Sample(count, batch, opt);
        double priorMs = sampler.LastMilliseconds;
        uint[]? words = mask == MaskSource.Random ? MaskHash.Bank(opt.Seed, 0, count, mvq!.Sizes.D2, ae.Config.Mvq!.DropRate) : null;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var session = new InferenceSession(ae, batch);
        var images = session.Decode(codes, words);
        return new Generated(codes, words, images, priorMs, sw.Elapsed.TotalMilliseconds)
        { PriorProfile = PriorSampler.Profiling ? sampler.LastProfile : null, PriorCpuMs = sampler.LastCpuMilliseconds };
    }
}
