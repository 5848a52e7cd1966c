// The model configuration (docs/model.md): typed sections, JSON with camelCase keys; unknown keys are refused.
using System.Text.Json;
using System.Text.Json.Serialization;
using MvqNative.Layers;
using MvqNative.Quantizers;

namespace MvqNative.Models;

/// <summary>The autoencoder's bottleneck (config JSON: "vq" | "mvq").</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ModelKind>))]
internal enum ModelKind { [JsonStringEnumMemberName("vq")] Vq, [JsonStringEnumMemberName("mvq")] Mvq }

/// <summary>How latents become tokens (config JSON: "grid": one per latent position | "global": a few per image).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<HeadKind>))]
internal enum HeadKind { [JsonStringEnumMemberName("grid")] Grid, [JsonStringEnumMemberName("global")] Global }

/// <summary>Image shape a model is built for.</summary>
internal sealed class ImageShape
{
    public int Channels { get; set; } = 1;
    public int Height { get; set; } = 28;
    public int Width { get; set; } = 28;
}

/// <summary>Encoder trunk and decoder widths (docs/model.md).</summary>
internal sealed class EncoderConfig
{
    /// <summary>[c0, c1]: widths after the first and second stride-2 convolution.</summary>
    public int[] Channels { get; set; } = [32, 64];
    public int ResBlocks { get; set; } = 2;
    public int ResHidden { get; set; } = 32;
    /// <summary>LeakyReLU negative slope.</summary>
    public float Slope { get; set; } = 0.2f;
}

/// <summary>Codebook training mode and its knobs (docs/model.md, losses).</summary>
internal sealed class QuantizerConfig
{
    public VqMode Mode { get; set; } = VqMode.Ema;
    public float Beta { get; set; } = 0.25f;
    public float Decay { get; set; } = 0.99f;
    /// <summary>Steps between dead-code restarts (0 disables).</summary>
    public int RestartEvery { get; set; } = 100;
    /// <summary>An entry used by fewer than this fraction of a uniform share of tokens since the last restart is dead.</summary>
    public float DeadFraction { get; set; } = 0.03f;
    public bool KMeansInit { get; set; } = true;
}

/// <summary>The secondary code of MVQ.</summary>
internal sealed class SecondaryConfig
{
    public int Tokens { get; set; } = 2;
    public int CodeDim { get; set; } = 16;
    public int Codes { get; set; } = 64;
}

/// <summary>Multiple-Hypotheses Dropout settings.</summary>
internal sealed class MvqConfig
{
    /// <summary>J, hypotheses per instance in training.</summary>
    public int Hypotheses { get; set; } = 256;
    /// <summary>J_eval, size of the fixed evaluation bank used for encoding.</summary>
    public int EvalHypotheses { get; set; } = 256;
    /// <summary>p, the probability that a mask bit is dropped.</summary>
    public float DropRate { get; set; } = 0.5f;
    /// <summary>Hidden width of the transformation network f.</summary>
    public int FHidden { get; set; } = 64;
    /// <summary>Hypotheses scored per chunk (running argmin across chunks).</summary>
    public int Chunk { get; set; } = 256;
    /// <summary>Seed of the evaluation bank (stored in checkpoints).</summary>
    public int BankSeed { get; set; } = 7;
    /// <summary>Train with a fixed seeded bank of J masks instead of fresh masks each step.</summary>
    public bool FixedTrainBank { get; set; }
}

/// <summary>
/// Everything that defines a model's graph (docs/model.md). Serialised into checkpoints, so a
/// model can be rebuilt from its file alone.
/// </summary>
internal sealed class ModelConfig
{
    public ModelKind Kind { get; set; } = ModelKind.Vq;
    public ImageShape Image { get; set; } = new();
    public EncoderConfig Encoder { get; set; } = new();
    public HeadKind Head { get; set; } = HeadKind.Grid;
    /// <summary>L1 for global heads (grid heads use H'W').</summary>
    public int Tokens { get; set; } = 5;
    public int CodeDim { get; set; } = 16;
    public int Codes { get; set; } = 128;
    public QuantizerConfig Quantizer { get; set; } = new();
    public SecondaryConfig? Secondary { get; set; }
    public MvqConfig? Mvq { get; set; }
    public LossKind Loss { get; set; } = LossKind.Mse;

    public bool IsMvq => Kind == ModelKind.Mvq;
    public int LatentHeight => Image.Height / 4;
    public int LatentWidth => Image.Width / 4;
    /// <summary>Primary tokens per instance.</summary>
    public int PrimaryTokens => Head == HeadKind.Grid ? LatentHeight * LatentWidth : Tokens;
    /// <summary>Secondary tokens per instance (0 for VQ).</summary>
    public int SecondaryTokens => !IsMvq ? 0 : Head == HeadKind.Grid ? LatentHeight * LatentWidth : Secondary!.Tokens;
    /// <summary>Length of the sequence a prior samples: L1 for VQ, L1 + L2 + 1 for MVQ.</summary>
    public int TokensPerInstance => IsMvq ? PrimaryTokens + SecondaryTokens + 1 : PrimaryTokens;

    /// <summary>Throws a one-line <see cref="MvqConfigException"/> for an inconsistent config.</summary>
    public void Validate(string source = "config")
    {
        void Check(bool ok, string msg) { if (!ok) throw new MvqConfigException(source, msg); }
        ConfigChecks.CheckSections(this, source); // null sections first: the checks below read them
        Check(Enum.IsDefined(Kind), $"kind must be vq or mvq, not '{Kind}'");
        Check(Enum.IsDefined(Head), $"head must be grid or global, not '{Head}'");
        Check(Image.Channels is 1 or 3, "image.channels must be 1 or 3");
        Check(Image.Height % 4 == 0 && Image.Width % 4 == 0 && Image.Height >= 4 && Image.Width >= 4, "image height and width must be positive multiples of 4");
        Check(Encoder.Channels.Length == 2 && Encoder.Channels.All(c => c > 0), "encoder.channels must be two positive widths");
        Check(Encoder.ResBlocks >= 0 && Encoder.ResHidden > 0, "encoder.resBlocks >= 0 and encoder.resHidden > 0");
        Check(Codes >= 2 && CodeDim >= 1, "codes >= 2 and codeDim >= 1");
        Check(Head == HeadKind.Grid || Tokens >= 1, "tokens >= 1 for a global head");
        Check(Enum.IsDefined(Quantizer.Mode), $"quantizer.mode must be ema or gradient, not '{Quantizer.Mode}'");
        Check(Enum.IsDefined(Loss), $"loss must be mse or l1, not '{Loss}'");
        if (IsMvq)
        {
            Check(Secondary != null && Mvq != null, "an mvq model needs 'secondary' and 'mvq' sections");
            Check(Secondary!.CodeDim is >= 1 and <= 32, "secondary.codeDim must be 1..32 (a mask is one 32-bit word)");
            Check(Secondary.Codes >= 2 && Secondary.Tokens >= 1, "secondary.codes >= 2, secondary.tokens >= 1");
            Check(Mvq!.Hypotheses >= 1 && Mvq.EvalHypotheses >= 1 && Mvq.Chunk >= 1, "mvq.hypotheses, evalHypotheses and chunk must be >= 1");
            Check(Mvq.DropRate is >= 0 and < 1, "mvq.dropRate must be in [0, 1)");
        }
        ConfigChecks.CheckBounds(this, source); // then every value within its bounds
    }

    public string ToJson() => JsonSerializer.Serialize(this, ModelJson.Default.ModelConfig);

    /// <summary>Reads and validates a model section; a bad value or an unknown key throws <see cref="MvqConfigException"/> naming it.</summary>
    public static ModelConfig FromJson(string json, string source = "config")
    {
        var c = ConfigJson.Read(json, ModelJson.Default.ModelConfig, source, "model") ?? throw new MvqConfigException(source, "empty model config");
        c.Validate(source);
        return c;
    }

    public ModelConfig Clone() => FromJson(ToJson());
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ModelConfig))]
internal sealed partial class ModelJson : JsonSerializerContext { }

/// <summary>The JSON names of the config enums (what logs and codes.json print).</summary>
internal static class ConfigNames
{
    public static string Name(this ModelKind k) => k == ModelKind.Mvq ? "mvq" : "vq";
    public static string Name(this HeadKind h) => h == HeadKind.Global ? "global" : "grid";
    public static string Name(this VqMode m) => m == VqMode.Ema ? "ema" : "gradient";
    public static string Name(this LossKind l) => l == LossKind.L1 ? "l1" : "mse";
}
