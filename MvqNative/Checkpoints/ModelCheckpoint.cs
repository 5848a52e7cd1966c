using System.Globalization;
using MvqNative.Backends;
using MvqNative.Data;
using MvqNative.Models;
using MvqNative.Training;

namespace MvqNative.Checkpoints;

/// <summary>What a checkpoint holds besides the weights: where training stood.</summary>
public sealed record TrainingState(int Step, TrainConfig Train, long BatcherEpoch, long BatcherPosition);

/// <summary>
/// Model checkpoints in safetensors: every parameter and buffer under its dotted name,
/// AdamW moments under optim.m.NAME / optim.v.NAME, and in the metadata the model config
/// (JSON), the train config, the step, the batcher (RNG) state and the bottleneck's own
/// metadata (e.g. the MVQ evaluation-bank seed). Written atomically.
/// </summary>
public static class ModelCheckpoint
{
    public const string Format = "mvqnative/1";

    public static void Save(string path, Autoencoder model, Trainer? trainer = null)
    {
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["model_config"] = model.Config.ToJson(),
        };
        foreach (var (k, v) in model.Bottleneck.Metadata) meta[k] = v;
        model.PrepareSave();
        var tensors = new List<SafeTensor>();
        foreach (var p in model.Parameters())
            tensors.Add(SafeTensor.FromFloats(p.Name, Longs(p.Value.Shape), p.Value.ToArray()));
        if (trainer != null)
        {
            meta["train_config"] = trainer.Config.ToJson();
            meta["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture);
            var (epoch, pos) = (trainer.Batcher.State.Epoch, trainer.Batcher.State.Position);
            meta["batcher_epoch"] = epoch.ToString(CultureInfo.InvariantCulture);
            meta["batcher_position"] = pos.ToString(CultureInfo.InvariantCulture);
            meta["optimizer_step"] = trainer.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture);
            foreach (var (name, m, v) in trainer.Optimizer.State)
            {
                tensors.Add(SafeTensor.FromFloats("optim.m." + name, Longs(m.Shape), m.ToArray()));
                tensors.Add(SafeTensor.FromFloats("optim.v." + name, Longs(v.Shape), v.ToArray()));
            }
        }
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>Reads the model config stored in a checkpoint (validated).</summary>
    public static ModelConfig ReadConfig(SafeTensorsContent file, string path)
    {
        if (!file.Metadata.TryGetValue("format", out var f) || f != Format)
            throw new MvqInputException(path, $"not an MvqNative checkpoint (metadata 'format' is {(f is null ? "missing" : "'" + f + "'")}, expected '{Format}')");
        if (!file.Metadata.TryGetValue("model_config", out var json))
            throw new MvqInputException(path, "checkpoint has no model_config metadata");
        try { return ModelConfig.FromJson(json, path); }
        catch (ArgumentException e) { throw new MvqInputException(path, e.Message); }
    }

    /// <summary>Builds the model stored in a checkpoint on a backend and loads its weights.</summary>
    public static Autoencoder Load(string path, Backend backend)
    {
        var file = SafeTensorsFile.Read(path);
        var model = new Autoencoder(backend, ReadConfig(file, path), seed: 0);
        try
        {
            model.Bottleneck.LoadMetadata(file.Metadata);
            LoadParameters(model, file, path);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    private static long[] Longs(int[] shape) => shape.Select(d => (long)d).ToArray();

    private static float[] Floats(SafeTensor t, string path) =>
        t.DType == SafeDType.F32 ? t.ToFloats() : throw new MvqInputException(path, $"tensor '{t.Name}' is {t.DType}, expected F32");

    private static void LoadParameters(Autoencoder model, SafeTensorsContent file, string path)
    {
        var byName = file.Tensors.ToDictionary(t => t.Name);
        foreach (var p in model.Parameters())
        {
            if (!byName.TryGetValue(p.Name, out var t)) throw new MvqInputException(path, $"tensor '{p.Name}' is missing");
            if (!t.Shape.SequenceEqual(p.Value.Shape.Select(d => (long)d)))
                throw new MvqInputException(path, $"tensor '{p.Name}' has shape [{string.Join(',', t.Shape)}], the model needs [{p.Value.ShapeString}]");
            var data = Floats(t, path);
            foreach (var v in data)
                if (!float.IsFinite(v)) throw new MvqInputException(path, $"tensor '{p.Name}' holds a non-finite value");
            p.Value.CopyFrom(data);
        }
        model.CompleteLoad();
    }

    /// <summary>Restores optimiser moments, step and batcher position into a trainer built for the same model.</summary>
    public static TrainingState RestoreTraining(string path, Trainer trainer)
    {
        var file = SafeTensorsFile.Read(path);
        var md = file.Metadata;
        if (!md.TryGetValue("step", out var stepText)) throw new MvqInputException(path, "checkpoint has no training state (was it saved by `mvq train`?)");
        LoadParameters(trainer.Model, file, path);
        // The bottleneck's own state (MVQ: mask seed and step, evaluation bank): without it a resumed
        // MVQ run would draw the masks of step 0 again.
        try { trainer.Model.Bottleneck.LoadMetadata(file.Metadata); }
        catch (ArgumentException e) { throw new MvqInputException(path, e.Message); }
        var byName = file.Tensors.ToDictionary(t => t.Name);
        foreach (var (name, m, v) in trainer.Optimizer.State)
        {
            if (!byName.TryGetValue("optim.m." + name, out var tm) || !byName.TryGetValue("optim.v." + name, out var tv))
                throw new MvqInputException(path, $"optimizer state of '{name}' is missing");
            if (!tm.Shape.SequenceEqual(Longs(m.Shape)) || !tv.Shape.SequenceEqual(Longs(v.Shape)))
                throw new MvqInputException(path, $"optimizer state of '{name}' has the wrong shape");
            m.CopyFrom(Floats(tm, path));
            v.CopyFrom(Floats(tv, path));
        }
        static long L(IReadOnlyDictionary<string, string> md, string k, string path) =>
            md.TryGetValue(k, out var s) && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new MvqInputException(path, $"metadata '{k}' is missing or not an integer");
        int step = (int)L(md, "step", path);
        trainer.Step = step;
        trainer.Optimizer.StepCount = (int)L(md, "optimizer_step", path);
        long epoch = L(md, "batcher_epoch", path), pos = L(md, "batcher_position", path);
        trainer.Batcher.Restore(new BatcherState(epoch, pos));
        var train = md.TryGetValue("train_config", out var tj) ? TrainConfig.FromJson(tj) : trainer.Config;
        return new TrainingState(step, train, epoch, pos);
    }
}
