// Configuration of a vector quantizer (codebook size, mode, commitment, EMA, restarts, k-means).
using System.Text.Json.Serialization;

namespace MvqNative.Quantizers;

/// <summary>How the codebook learns (config JSON: "gradient" | "ema").</summary>
[JsonConverter(typeof(JsonStringEnumConverter<VqMode>))]
internal enum VqMode
{
    /// <summary>Codebook trained by the optimiser: loss ||sg(z) - q||^2 + beta ||z - sg(q)||^2.</summary>
    [JsonStringEnumMemberName("gradient")] Gradient,
    /// <summary>Codebook updated by exponential moving averages in training; loss beta ||z - sg(q)||^2 only.</summary>
    [JsonStringEnumMemberName("ema")] Ema,
}

/// <summary>Options of a <see cref="VectorQuantizer"/>.</summary>
internal sealed class VqOptions
{
    /// <summary>K, the number of codebook entries.</summary>
    public int Codes { get; set; } = 512;
    /// <summary>D, the size of each code vector (and of each token).</summary>
    public int Dim { get; set; } = 64;
    public VqMode Mode { get; set; } = VqMode.Gradient;
    /// <summary>Commitment weight beta.</summary>
    public float Beta { get; set; } = 0.25f;
    /// <summary>EMA decay (EMA mode). 0.99; never reuse beta here (a known pitfall).</summary>
    public float Decay { get; set; } = 0.99f;
    /// <summary>Laplace smoothing of the EMA cluster sizes.</summary>
    public float Eps { get; set; } = 1e-5f;
    /// <summary>
    /// Dead-code threshold as a fraction of a uniform share: entry k is dead when its usage
    /// since the last restart is below DeadThreshold * (tokens seen since then) / K.
    /// 0 disables restarts.
    /// </summary>
    public float DeadThreshold { get; set; } = 1e-3f;
    /// <summary>Training steps between dead-code restarts; 0 or less disables them.</summary>
    public int RestartEvery { get; set; } = 100;
    /// <summary>Standard deviation of the noise added to a re-seeded entry, relative to the RMS of the batch z.</summary>
    public float RestartNoise { get; set; } = 0.01f;
    /// <summary>Initialise the codebook by k-means on the first training batch.</summary>
    public bool KMeansInit { get; set; }
    public int KMeansIterations { get; set; } = 10;
    /// <summary>Seed of the quantizer's generator when none is passed to the constructor.</summary>
    public int Seed { get; set; }
}
