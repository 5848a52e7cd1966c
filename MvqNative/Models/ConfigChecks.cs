// ConfigChecks.cs: bounds on every config value, and the memory a model, its training state and a batch will take,
// checked before anything is allocated (configs and checkpoint metadata are user input).
using MvqNative.IO;
using MvqNative.Training;

namespace MvqNative.Models;

/// <summary>
/// Value bounds for <see cref="ModelConfig"/> and <see cref="TrainConfig"/> (a missing or null section, a NaN, a
/// negative cadence or a width of 10^8 is refused with one line naming the key), and a memory estimate from the config
/// alone, so that a model or batch that would not fit is refused with the estimate and the limit before it is built.
/// </summary>
internal static class ConfigChecks
{
    /// <summary>Largest channel width, code dimension, token count or hidden width accepted.</summary>
    public const int MaxWidth = 4096;
    /// <summary>Largest codebook size and hypothesis count accepted.</summary>
    public const int MaxCodes = 65536;
    /// <summary>Largest image side accepted for a model.</summary>
    public const int MaxSide = 4096;
    /// <summary>Largest residual block count accepted.</summary>
    public const int MaxResBlocks = 64;
    /// <summary>Largest batch accepted (before clamping to the dataset).</summary>
    public const int MaxBatch = 1 << 20;

    // Spelled so that it holds whether the config's head is a string or an enum.
    private static bool IsGrid(ModelConfig c) => string.Equals(c.Head.ToString(), "grid", StringComparison.OrdinalIgnoreCase);

    [ThreadStatic] private static string? _source;

    private static void Check(bool ok, string msg)
    {
        if (!ok) throw new MvqConfigException(_source ?? "config", msg);
    }

    private static void InRange(int v, int lo, int hi, string key) => Check(v >= lo && v <= hi, $"{key} must be from {lo} to {hi}, got {v}");

    private static void Finite(float v, float lo, float hi, bool hiOpen, string key) =>
        Check(float.IsFinite(v) && v >= lo && (hiOpen ? v < hi : v <= hi), $"{key} must be a number in [{lo}, {hi}{(hiOpen ? ")" : "]")}, got {v}");

    /// <summary>The sections a model config must have (JSON null in place of an object is refused, naming the key).</summary>
    public static void CheckSections(ModelConfig c, string source = "config")
    {
        _source = source;
        Check(c.Image is not null, "image must be an object {channels, height, width}, not null");
        Check(c.Encoder is not null, "encoder must be an object, not null");
        Check(c.Quantizer is not null, "quantizer must be an object, not null");
        Check(c.Encoder!.Channels is not null, "encoder.channels must be two positive widths, not null");
    }

    /// <summary>Bounds of every model config value (sections present, widths and counts within limits).</summary>
    /// <exception cref="MvqConfigException">A value out of bounds, named by its key, with <paramref name="source"/>.</exception>
    public static void CheckBounds(ModelConfig c, string source = "config")
    {
        _source = source;
        Check(c.Image is not null, "image must be an object {channels, height, width}, not null");
        Check(c.Encoder is not null, "encoder must be an object, not null");
        Check(c.Quantizer is not null, "quantizer must be an object, not null");
        Check(c.Encoder!.Channels is not null, "encoder.channels must be two positive widths, not null");
        InRange(c.Image!.Height, 4, MaxSide, "image.height");
        InRange(c.Image.Width, 4, MaxSide, "image.width");
        foreach (var ch in c.Encoder.Channels!) InRange(ch, 1, MaxWidth, "encoder.channels[]");
        InRange(c.Encoder.ResBlocks, 0, MaxResBlocks, "encoder.resBlocks");
        InRange(c.Encoder.ResHidden, 1, MaxWidth, "encoder.resHidden");
        Check(float.IsFinite(c.Encoder.Slope), "encoder.slope must be a finite number");
        InRange(c.Codes, 2, MaxCodes, "codes");
        InRange(c.CodeDim, 1, MaxWidth, "codeDim");
        if (!IsGrid(c)) InRange(c.Tokens, 1, MaxWidth, "tokens");
        var q = c.Quantizer!;
        Finite(q.Beta, 0, 1000, false, "quantizer.beta");
        Finite(q.Decay, 0, 1, true, "quantizer.decay");
        Check(q.RestartEvery >= 0, $"quantizer.restartEvery must be >= 0, got {q.RestartEvery}");
        Finite(q.DeadFraction, 0, 1, false, "quantizer.deadFraction");
        if (c.IsMvq)
        {
            Check(c.Secondary is not null && c.Mvq is not null, "an mvq model needs 'secondary' and 'mvq' sections");
            InRange(c.Secondary!.Codes, 2, MaxCodes, "secondary.codes");
            InRange(c.Secondary.Tokens, 1, MaxWidth, "secondary.tokens");
            InRange(c.Mvq!.Hypotheses, 1, MaxCodes, "mvq.hypotheses");
            InRange(c.Mvq.EvalHypotheses, 1, MaxCodes, "mvq.evalHypotheses");
            InRange(c.Mvq.Chunk, 1, MaxCodes, "mvq.chunk");
            InRange(c.Mvq.FHidden, 1, MaxWidth, "mvq.fHidden");
            Finite(c.Mvq.DropRate, 0, 1, true, "mvq.dropRate");
        }
    }

    /// <summary>Bounds of every train config value (positive steps and batch, finite rates, betas in [0, 1), cadences >= 0).</summary>
    /// <exception cref="MvqConfigException">A value out of bounds, named by its key, with <paramref name="source"/>.</exception>
    public static void Check(TrainConfig t, string source = "config")
    {
        ArgumentNullException.ThrowIfNull(t);
        _source = source;
        Check(t.Steps >= 1, $"train.steps must be >= 1, got {t.Steps}");
        InRange(t.Batch, 1, MaxBatch, "train.batch");
        Check(float.IsFinite(t.Lr) && t.Lr > 0, $"train.lr must be a finite number > 0, got {t.Lr}");
        Check(float.IsFinite(t.MinLr) && t.MinLr >= 0, $"train.minLr must be a finite number >= 0, got {t.MinLr}");
        Check(t.WarmupSteps >= 0, $"train.warmupSteps must be >= 0, got {t.WarmupSteps}");
        Finite(t.Beta1, 0, 1, true, "train.beta1");
        Finite(t.Beta2, 0, 1, true, "train.beta2");
        Check(float.IsFinite(t.WeightDecay) && t.WeightDecay >= 0, $"train.weightDecay must be a finite number >= 0, got {t.WeightDecay}");
        Check(float.IsFinite(t.ClipNorm) && t.ClipNorm > 0, $"train.clipNorm must be a finite number > 0, got {t.ClipNorm}");
        Check(t.LogEvery >= 1, $"train.logEvery must be >= 1, got {t.LogEvery}");
        Check(t.CheckpointEvery >= 0, $"train.checkpointEvery must be >= 0 (0: by time only), got {t.CheckpointEvery}");
        Check(float.IsFinite(t.CheckpointMinutes) && t.CheckpointMinutes >= 0, $"train.checkpointMinutes must be a finite number >= 0, got {t.CheckpointMinutes}");
    }

    /// <summary>Parameters and buffers of the model a config describes (what its checkpoint holds, optimiser state aside).</summary>
    public static long ParameterCount(ModelConfig c)
    {
        long C = c.Image.Channels, c0 = c.Encoder.Channels[0], c1 = c.Encoder.Channels[1], R = c.Encoder.ResBlocks, hd = c.Encoder.ResHidden;
        long hw = (long)(c.Image.Height / 4) * (c.Image.Width / 4);
        long res = R * (hd * c1 * 9 + hd + c1 * hd + c1);
        long enc = c0 * C * 16 + c0 + c1 * c0 * 16 + c1 + c1 * c1 * 9 + c1 + res;
        long dec = c1 * c1 * 9 + c1 + res + c0 * c1 * 9 + c0 + C * c0 * 9 + C;
        long Head(long l, long d) => IsGrid(c) ? (d * c1 + d) + (c1 * d + c1) : (c1 * hw * l * d + l * d) + (l * d * c1 * hw + c1 * hw);
        long Vq(long k, long d) => k * d + k + k * d + 1 + k; // codebook, EMA cluster sizes and sums, step counter, restart usage
        long l1 = IsGrid(c) ? hw : c.Tokens, d1 = c.CodeDim;
        long n = enc + dec + Head(l1, d1) + Vq(c.Codes, d1);
        if (c.IsMvq && c.Secondary is not null && c.Mvq is not null)
        {
            long l2 = IsGrid(c) ? hw : c.Secondary.Tokens, d2 = c.Secondary.CodeDim, f = c.Mvq.FHidden;
            n += Head(l2, d2) - (IsGrid(c) ? c1 * d2 + c1 : l2 * d2 * c1 * hw + c1 * hw) + Vq(c.Secondary.Codes, d2);
            n += 2 * d2 + (d2 * f + f) + 4 * f + (f * d1 + d1) + (l1 == l2 && IsGrid(c) ? 0 : l1 * l2 + l1 * d1);
        }
        return n;
    }

    /// <summary>
    /// Bytes a model takes with <paramref name="batch"/> images in flight: weights (and, when training, gradients and
    /// two AdamW moments), plus the activations of one batch (kept for the backward pass when training), plus the
    /// MVQ hypothesis scoring of one chunk. An estimate for refusing what cannot fit, not an allocation plan.
    /// </summary>
    public static long EstimateBytes(ModelConfig c, long batch, bool training)
    {
        long p = ParameterCount(c);
        long C = c.Image.Channels, c0 = c.Encoder.Channels[0], c1 = c.Encoder.Channels[1], R = c.Encoder.ResBlocks, hd = c.Encoder.ResHidden;
        long px = (long)c.Image.Height * c.Image.Width, hw = px / 16;
        long perImage = 4 * C * px + 2 * c0 * px / 4 + c1 * hw * (6 + 4 * R) + 2 * R * hd * hw + 2 * c1 * px / 4 + 2 * c0 * px;
        long l1 = IsGrid(c) ? hw : c.Tokens;
        perImage += 4 * l1 * c.CodeDim + (long)c.Codes; // tokens, quantized, gradients, distances
        if (c.IsMvq && c.Mvq is not null && c.Secondary is not null)
        {
            long l2 = IsGrid(c) ? hw : c.Secondary.Tokens;
            long j = Math.Min(training ? c.Mvq.Hypotheses : c.Mvq.EvalHypotheses, c.Mvq.Chunk);
            perImage += j * (l2 * c.Mvq.FHidden + l1 * c.CodeDim) + 4 * l2 * c.Secondary.CodeDim;
        }
        long floats = p * (training ? 4 : 1) + batch * perImage * (training ? 2 : 1);
        return floats * sizeof(float);
    }

    /// <summary>Refuses (one line, with the estimate and the limit) a model and batch over <see cref="Limits.ModelBytes"/>.</summary>
    public static void CheckMemory(ModelConfig c, long batch, bool training, string source)
    {
        long need = EstimateBytes(c, batch, training), limit = Limits.ModelBytes;
        if (need > limit)
            throw new MvqInputException(source, $"the model ({ParameterCount(c):N0} parameters){(batch > 0 ? $" with batches of {batch}" : "")} needs about {Limits.Size(need)}, over the {Limits.Size(limit)} limit (raise it with {Limits.ModelVar})");
    }
}
