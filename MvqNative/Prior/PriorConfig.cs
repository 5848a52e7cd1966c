// PriorConfig.cs: the transformer prior's shape (layers, heads, width, dropout) and its default per autoencoder.
using System.Text.Json;
using System.Text.Json.Serialization;
using MvqNative.Models;
using MvqNative.Training;

namespace MvqNative.Prior;

/// <summary>
/// A GPT-style decoder-only transformer (docs/prior.md): width C, <see cref="Layers"/> pre-LayerNorm blocks of
/// <see cref="Heads"/>-head causal self-attention and a GELU MLP of width <see cref="MlpRatio"/> x C.
/// </summary>
internal sealed class PriorConfig
{
    public int Layers { get; set; } = 3;
    public int Heads { get; set; } = 4;
    public int Width { get; set; } = 128;
    public int MlpRatio { get; set; } = 4;
    /// <summary>
    /// Dropout probability on each block's attention output and MLP output (after their projections), training only;
    /// 0 (the default) runs no dropout kernel at all.
    /// </summary>
    public float Dropout { get; set; }
    /// <summary>Standard deviation of the initial weights (GPT-2: 0.02; residual projections get / sqrt(2 layers)).</summary>
    public float InitStd { get; set; } = 0.02f;

    public void Validate()
    {
        static void Check(bool ok, string msg) { if (!ok) throw new MvqConfigException("prior config", msg); }
        Check(Layers >= 1 && Heads >= 1 && Width >= 1 && MlpRatio >= 1, "layers, heads, width and mlpRatio must be >= 1");
        Check(Width % Heads == 0, $"width {Width} must be a multiple of heads {Heads}");
        Check(Dropout >= 0 && Dropout < 1, $"dropout {Dropout} must be in [0, 1)");
        Check(InitStd > 0, "initStd must be positive");
    }

    public string ToJson() => JsonSerializer.Serialize(this, PriorJson.Default.PriorConfig);

    public static PriorConfig FromJson(string json, string source = "prior config")
    {
        PriorConfig? c;
        try { c = JsonSerializer.Deserialize(json, PriorJson.Default.PriorConfig); }
        catch (JsonException e) { throw new MvqConfigException(source, $"invalid prior config JSON ({e.Message})"); }
        if (c == null) throw new MvqConfigException(source, "empty prior config");
        c.Validate();
        return c;
    }

    /// <summary>
    /// Default prior and training recipe for an autoencoder, sized to train on the CPU in minutes on
    /// FashionMNIST: long sequences (7x7 grids) get a smaller batch, short ones (global tokens) more steps.
    /// </summary>
    public static (PriorConfig Prior, TrainConfig Train) DefaultFor(ModelConfig ae)
    {
        int t = ae.TokensPerInstance;
        var p = new PriorConfig { Layers = 3, Heads = 4, Width = 128 };
        var train = new TrainConfig
        {
            Steps = t > 16 ? 2000 : 3000,
            Batch = t > 16 ? 32 : 128,
            Lr = 1e-3f, MinLr = 1e-4f, WarmupSteps = 100,
            WeightDecay = 0.01f, ClipNorm = 1.0f, Seed = 1, LogEvery = 50, CheckpointEvery = 500,
        };
        return (p, train);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = false, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(PriorConfig))]
[JsonSerializable(typeof(string[][]))]
internal sealed partial class PriorJson : JsonSerializerContext { }
