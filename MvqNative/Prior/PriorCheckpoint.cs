// PriorCheckpoint.cs: prior.safetensors (weights, AdamW state, the autoencoder it belongs to) and the codes cache.
using System.Globalization;
using System.Text.Json;
using MvqNative.Backends;
using MvqNative.Checkpoints;
using MvqNative.Models;
using MvqNative.Training;

namespace MvqNative.Prior;

/// <summary>The autoencoder a prior or a codes cache belongs to.</summary>
internal sealed record AutoencoderRef(string Kind, string ConfigHash, string WeightsHash)
{
    public static AutoencoderRef Of(Autoencoder ae) => new(ae.Config.Kind.ToString().ToLowerInvariant(), ModelIdentity.ConfigHash(ae), ModelIdentity.WeightsHash(ae));

    internal void Write(Dictionary<string, string> meta)
    {
        meta["ae_kind"] = Kind; meta["ae_config_hash"] = ConfigHash; meta["ae_weights_hash"] = WeightsHash;
    }

    internal static AutoencoderRef Read(IReadOnlyDictionary<string, string> md, string path) =>
        new(Get(md, "ae_kind", path), Get(md, "ae_config_hash", path), Get(md, "ae_weights_hash", path));

    /// <summary>Throws a one-line error naming <paramref name="path"/> when it belongs to another autoencoder.</summary>
    public void Check(AutoencoderRef ae, string path, string what)
    {
        if (ConfigHash != ae.ConfigHash)
            throw new MvqInputException(path, $"{what} belongs to another autoencoder (config hash {ModelIdentity.Short(ConfigHash)}, {Kind}; the given model has {ModelIdentity.Short(ae.ConfigHash)}, {ae.Kind})");
        if (WeightsHash != ae.WeightsHash)
            throw new MvqInputException(path, $"{what} belongs to another autoencoder (same config, different weights: {ModelIdentity.Short(WeightsHash)} vs {ModelIdentity.Short(ae.WeightsHash)})");
    }

    internal static string Get(IReadOnlyDictionary<string, string> md, string key, string path) =>
        md.TryGetValue(key, out var v) ? v : throw new MvqInputException(path, $"metadata '{key}' is missing");
}

/// <summary>
/// Prior checkpoints in safetensors: parameters under their names, AdamW moments under optim.m./optim.v., and
/// in the metadata the prior config, the code layout, the autoencoder reference (kind, config and weights
/// hashes) and the training state (train config, step, batcher, optimiser step). Written atomically.
/// </summary>
internal static class PriorCheckpoint
{
    public const string Format = "mvqnative-prior/1";

    /// <summary>
    /// Writes the prior atomically. Refuses (with <see cref="TrainingDivergedException"/>, writing nothing) when the
    /// trainer saw a non-finite loss or gradient norm, or when a weight or optimiser moment is not finite: a diverged
    /// run never replaces the last good checkpoint.
    /// </summary>
    public static void Save(string path, TransformerPrior prior, AutoencoderRef ae, PriorTrainer? trainer = null)
    {
        int step = trainer?.Step ?? 0;
        string kept = $"{path} was not written";
        if (trainer != null && trainer.Diverged)
            throw new TrainingDivergedException(step, "the loss or the gradient norm of a recent step", kept);
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["prior_config"] = prior.Config.ToJson(),
            ["layout"] = LayoutJson(prior.Layout),
        };
        ae.Write(meta);
        var tensors = new List<SafeTensor>();
        foreach (var p in prior.Parameters())
            tensors.Add(SafeTensor.FromFloats(p.Name, Longs(p.Value.Shape), ModelCheckpoint.Finite(p.Value.ToArray(), $"tensor '{p.Name}'", step, kept)));
        if (trainer != null)
        {
            meta["train_config"] = trainer.Config.ToJson();
            meta["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture);
            meta["batcher_epoch"] = trainer.Batcher.Epoch.ToString(CultureInfo.InvariantCulture);
            meta["batcher_position"] = trainer.Batcher.Position.ToString(CultureInfo.InvariantCulture);
            meta["optimizer_step"] = trainer.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture);
            foreach (var (name, m, v) in trainer.Optimizer.State)
            {
                tensors.Add(SafeTensor.FromFloats("optim.m." + name, Longs(m.Shape), ModelCheckpoint.Finite(m.ToArray(), $"AdamW moment m of '{name}'", step, kept)));
                tensors.Add(SafeTensor.FromFloats("optim.v." + name, Longs(v.Shape), ModelCheckpoint.Finite(v.ToArray(), $"AdamW moment v of '{name}'", step, kept)));
            }
        }
        SafeTensorsFile.Write(path, tensors, meta);
    }

    internal static string LayoutJson(CodeLayout layout) =>
        JsonSerializer.Serialize(layout.Segments.Select(s => new[] { s.Name, s.Start.ToString(CultureInfo.InvariantCulture), s.Length.ToString(CultureInfo.InvariantCulture), s.Vocabulary.ToString(CultureInfo.InvariantCulture) }).ToArray(), PriorJson.Default.StringArrayArray);

    internal static CodeLayout ParseLayout(string json, string path)
    {
        try
        {
            var rows = JsonSerializer.Deserialize(json, PriorJson.Default.StringArrayArray) ?? throw new MvqInputException(path, "layout metadata is empty");
            return new CodeLayout(rows.Select(r => new CodeSegment(r[0], int.Parse(r[1], CultureInfo.InvariantCulture), int.Parse(r[2], CultureInfo.InvariantCulture), int.Parse(r[3], CultureInfo.InvariantCulture))).ToList());
        }
        catch (Exception e) when (e is JsonException or FormatException or IndexOutOfRangeException or ArgumentException)
        {
            throw new MvqInputException(path, "layout metadata is malformed: " + e.Message);
        }
    }

    /// <summary>What a prior file says about itself, without building the model.</summary>
    public static (PriorConfig Config, CodeLayout Layout, AutoencoderRef Ae, SafeTensorsContent File) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new MvqInputException(path, "prior file does not exist");
        var file = SafeTensorsFile.Read(path);
        var md = file.Metadata;
        if (!md.TryGetValue("format", out var f) || f != Format)
            throw new MvqInputException(path, $"not a prior checkpoint (metadata 'format' is {(f is null ? "missing" : "'" + f + "'")}, expected '{Format}')");
        PriorConfig cfg;
        try { cfg = PriorConfig.FromJson(AutoencoderRef.Get(md, "prior_config", path), path); }
        catch (MvqUsageException e) { throw new MvqInputException(path, e.Message); }
        return (cfg, ParseLayout(AutoencoderRef.Get(md, "layout", path), path), AutoencoderRef.Read(md, path), file);
    }

    /// <summary>Loads a prior for the autoencoder <paramref name="ae"/> (refused when it was trained on another one).</summary>
    public static TransformerPrior Load(string path, Backend backend, AutoencoderRef ae, CodeLayout aeLayout)
    {
        var (cfg, layout, owner, file) = ReadHeader(path);
        owner.Check(ae, path, "prior");
        if (!layout.SameAs(aeLayout)) throw new MvqInputException(path, $"prior's code layout ({layout}) is not the model's ({aeLayout})");
        var prior = new TransformerPrior(backend, cfg, layout, seed: 0);
        try { LoadParameters(prior, file, path); }
        catch { prior.Dispose(); throw; }
        return prior;
    }

    private static long[] Longs(int[] shape) => shape.Select(d => (long)d).ToArray();

    private static float[] Floats(SafeTensor t, string path) =>
        t.DType == SafeDType.F32 ? t.ToFloats() : throw new MvqInputException(path, $"tensor '{t.Name}' is {t.DType}, expected F32");

    private static void LoadParameters(TransformerPrior prior, SafeTensorsContent file, string path)
    {
        foreach (var p in prior.Parameters())
        {
            if (!file.ByName.TryGetValue(p.Name, out var t)) throw new MvqInputException(path, $"tensor '{p.Name}' is missing");
            if (!t.Shape.SequenceEqual(Longs(p.Value.Shape)))
                throw new MvqInputException(path, $"tensor '{p.Name}' has shape [{string.Join(',', t.Shape)}], the prior needs [{p.Value.ShapeString}]");
            var data = Floats(t, path);
            foreach (var v in data) if (!float.IsFinite(v)) throw new MvqInputException(path, $"tensor '{p.Name}' holds a non-finite value");
            p.Value.CopyFrom(data);
        }
    }

    /// <summary>Restores weights, AdamW moments, step and batcher into a trainer built for the same prior.</summary>
    public static int RestoreTraining(string path, PriorTrainer trainer, AutoencoderRef ae)
    {
        var (_, layout, owner, file) = ReadHeader(path);
        owner.Check(ae, path, "prior");
        if (!layout.SameAs(trainer.Model.Layout)) throw new MvqInputException(path, $"prior's code layout ({layout}) is not the model's ({trainer.Model.Layout})");
        var md = file.Metadata;
        if (!md.ContainsKey("step")) throw new MvqInputException(path, "prior has no training state");
        LoadParameters(trainer.Model, file, path);
        foreach (var (name, m, v) in trainer.Optimizer.State)
        {
            if (!file.ByName.TryGetValue("optim.m." + name, out var tm) || !file.ByName.TryGetValue("optim.v." + name, out var tv))
                throw new MvqInputException(path, $"optimizer state of '{name}' is missing");
            if (!tm.Shape.SequenceEqual(Longs(m.Shape)) || !tv.Shape.SequenceEqual(Longs(v.Shape)))
                throw new MvqInputException(path, $"optimizer state of '{name}' has the wrong shape");
            m.CopyFrom(Floats(tm, path)); v.CopyFrom(Floats(tv, path));
        }
        static long L(IReadOnlyDictionary<string, string> md, string k, string path) =>
            md.TryGetValue(k, out var s) && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new MvqInputException(path, $"metadata '{k}' is missing or not an integer");
        trainer.Step = (int)L(md, "step", path);
        trainer.Optimizer.StepCount = (int)L(md, "optimizer_step", path);
        trainer.Batcher.Restore(L(md, "batcher_epoch", path), L(md, "batcher_position", path));
        return trainer.Step;
    }
}

/// <summary>
/// Codes of a dataset under one autoencoder, cached as safetensors (tensor "codes" I32 [N, T]; metadata: the
/// autoencoder reference, the data spec, the layout). A cache made by another autoencoder is refused.
/// </summary>
internal static class CodesCache
{
    public const string Format = "mvqnative-codes-cache/1";

    public static void Save(string path, int[] codes, CodeLayout layout, AutoencoderRef ae, string dataSpec)
    {
        var meta = new Dictionary<string, string> { ["format"] = Format, ["data"] = dataSpec, ["layout"] = PriorCheckpoint.LayoutJson(layout) };
        ae.Write(meta);
        SafeTensorsFile.Write(path, [SafeTensor.FromInt32s("codes", [codes.Length / layout.Length, layout.Length], codes)], meta);
    }

    /// <summary>The cached codes, or null when <paramref name="path"/> does not exist; throws when it belongs elsewhere.</summary>
    public static int[]? TryLoad(string path, CodeLayout layout, AutoencoderRef ae, string dataSpec)
    {
        if (!File.Exists(path)) return null;
        var file = SafeTensorsFile.Read(path);
        var md = file.Metadata;
        if (!md.TryGetValue("format", out var f) || f != Format) throw new MvqInputException(path, $"not a codes cache (format must be '{Format}')");
        AutoencoderRef.Read(md, path).Check(ae, path, "codes cache");
        if (AutoencoderRef.Get(md, "data", path) != dataSpec) throw new MvqInputException(path, $"codes cache holds {md["data"]}, not {dataSpec}");
        if (!PriorCheckpoint.ParseLayout(AutoencoderRef.Get(md, "layout", path), path).SameAs(layout)) throw new MvqInputException(path, "codes cache has another code layout");
        if (!file.ByName.TryGetValue("codes", out var t) || t.DType != SafeDType.I32 || t.Shape.Length != 2 || t.Shape[1] != layout.Length)
            throw new MvqInputException(path, $"codes cache needs an I32 tensor 'codes' [N, {layout.Length}]");
        var codes = t.ToInt32s();
        for (int i = 0; i < codes.Length; i++)
        {
            var (lo, hi) = layout.Bounds(i % layout.Length);
            if ((uint)codes[i] >= (uint)(hi - lo)) throw new MvqInputException(path, $"code {codes[i]} at position {i % layout.Length} of row {i / layout.Length} is out of range");
        }
        return codes;
    }
}

/// <summary>Encodes a whole dataset in evaluation mode.</summary>
internal static class DatasetEncoder
{
    /// <summary>Codes [N, CodeLength] of every image of <paramref name="data"/>; <paramref name="progress"/> gets images done.</summary>
    public static int[] Encode(Autoencoder ae, Data.ImageDataset data, int batch = 256, Action<int>? progress = null)
    {
        using var session = new InferenceSession(ae, batch);
        var codes = new int[data.Count * session.CodeLength];
        for (int start = 0; start < data.Count; start += batch)
        {
            int b = Math.Min(batch, data.Count - start);
            var (_, _, c) = session.Run(data, start, b);
            c.CopyTo(codes, start * session.CodeLength);
            progress?.Invoke(start + b);
        }
        return codes;
    }
}
