using System.Text.Json;
using System.Text.Json.Serialization;

namespace MvqNative.Training;

/// <summary>Optimisation settings of a run (the paper's reference: AdamW 5e-4, betas 0.9/0.999, clip 1.0, batch 64).</summary>
internal sealed class TrainConfig
{
    public int Steps { get; set; } = 1200;
    public int Batch { get; set; } = 64;
    public float Lr { get; set; } = 2e-3f;
    public float MinLr { get; set; } = 1e-4f;
    public int WarmupSteps { get; set; } = 50;
    public float Beta1 { get; set; } = 0.9f;
    public float Beta2 { get; set; } = 0.999f;
    public float WeightDecay { get; set; } = 0.0f;
    public float ClipNorm { get; set; } = 1.0f;
    public int Seed { get; set; } = 1;
    /// <summary>Steps between log lines (and the only host synchronisations of a step on a GPU).</summary>
    public int LogEvery { get; set; } = 25;
    /// <summary>Steps between checkpoints written during training (0: only at the end).</summary>
    public int CheckpointEvery { get; set; } = 500;
    /// <summary>Minutes of training between checkpoints, whatever the step count (0: by steps only), so a crash loses little.</summary>
    public float CheckpointMinutes { get; set; } = 10f;

    public string ToJson() => JsonSerializer.Serialize(this, TrainJson.Default.TrainConfig);
    /// <summary>Reads a train section; a bad value or an unknown key throws <see cref="MvqConfigException"/> naming it.</summary>
    public static TrainConfig FromJson(string json, string source = "config") =>
        Models.ConfigJson.Read(json, TrainJson.Default.TrainConfig, source, "train") ?? new TrainConfig();
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(TrainConfig))]
internal sealed partial class TrainJson : JsonSerializerContext { }
