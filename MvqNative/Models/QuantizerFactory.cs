using MvqNative.Quantizers;

namespace MvqNative.Models;

/// <summary>Maps the JSON quantizer section onto <see cref="VqOptions"/>.</summary>
internal static class QuantizerFactory
{
    public static VqOptions Options(QuantizerConfig q, int codes, int dim, int seed) => new()
    {
        Codes = codes,
        Dim = dim,
        Mode = q.Mode,
        Beta = q.Beta,
        Decay = q.Decay,
        RestartEvery = q.RestartEvery,
        DeadThreshold = q.DeadFraction,
        KMeansInit = q.KMeansInit,
        Seed = seed,
    };
}
