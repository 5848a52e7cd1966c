using System.Globalization;
using MvqNative.Backends;
using MvqNative.Data;
using MvqNative.IO;
using MvqNative.Models;
using MvqNative.Training;

namespace MvqNative.Checkpoints;

/// <summary>What a checkpoint holds besides the weights: where training stood.</summary>
/// <param name="Step">Steps completed.</param>
/// <param name="Train">The train config stored in the checkpoint (the trainer's when it has none).</param>
/// <param name="BatcherEpoch">Epoch the batcher continues from.</param>
/// <param name="BatcherPosition">Position in that epoch's order.</param>
/// <param name="NewDataOrder">The checkpoint's data position did not fit this dataset (another size): a new order was started.</param>
/// <param name="SavedDatasetCount">Images in the dataset the checkpoint was trained on (null for older checkpoints).</param>
internal sealed record TrainingState(int Step, TrainConfig Train, long BatcherEpoch, long BatcherPosition, bool NewDataOrder = false, long? SavedDatasetCount = null);

/// <summary>
/// Model checkpoints in safetensors: every parameter and buffer under its dotted name,
/// AdamW moments under optim.m.NAME / optim.v.NAME, and in the metadata the model config
/// (JSON), the train config, the step, the batcher (RNG) state and the bottleneck's own
/// metadata (e.g. the MVQ evaluation-bank seed). Written atomically.
/// </summary>
internal static class ModelCheckpoint
{
    public const string Format = "mvqnative/1";

    /// <summary>
    /// Writes the checkpoint atomically. Refuses (with <see cref="TrainingDivergedException"/>, writing nothing) when the
    /// trainer saw a non-finite loss or gradient norm since it started, or when any weight, buffer or optimiser moment
    /// is not finite: a diverged run never replaces the last good checkpoint.
    /// </summary>
    public static void Save(string path, Autoencoder model, Trainer? trainer = null)
    {
        int step = trainer?.Step ?? 0;
        string kept = $"{path} was not written";
        if (trainer != null && trainer.Diverged)
            throw new TrainingDivergedException(step, "a loss term or the gradient norm of a recent step", kept);
        var meta = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["model_config"] = model.Config.ToJson(),
        };
        foreach (var (k, v) in model.Bottleneck.Metadata) meta[k] = v;
        model.PrepareSave();
        var tensors = new List<SafeTensor>();
        foreach (var p in model.Parameters())
            tensors.Add(SafeTensor.FromFloats(p.Name, Longs(p.Value.Shape), Finite(p.Value.ToArray(), $"tensor '{p.Name}'", step, kept)));
        if (trainer != null)
        {
            meta["train_config"] = trainer.Config.ToJson();
            meta["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture);
            var (epoch, pos) = (trainer.Batcher.State.Epoch, trainer.Batcher.State.Position);
            meta["batcher_epoch"] = epoch.ToString(CultureInfo.InvariantCulture);
            meta["batcher_position"] = pos.ToString(CultureInfo.InvariantCulture);
            meta["dataset_count"] = trainer.Batcher.DatasetCount.ToString(CultureInfo.InvariantCulture);
            meta["optimizer_step"] = trainer.Optimizer.StepCount.ToString(CultureInfo.InvariantCulture);
            foreach (var (name, m, v) in trainer.Optimizer.State)
            {
                tensors.Add(SafeTensor.FromFloats("optim.m." + name, Longs(m.Shape), Finite(m.ToArray(), $"optimizer moment m of '{name}'", step, kept)));
                tensors.Add(SafeTensor.FromFloats("optim.v." + name, Longs(v.Shape), Finite(v.ToArray(), $"optimizer moment v of '{name}'", step, kept)));
            }
        }
        SafeTensorsFile.Write(path, tensors, meta);
    }

    /// <summary>Reads and validates a checkpoint file (regular file, within <see cref="Limits.CheckpointBytes"/>).</summary>
    public static SafeTensorsContent ReadFile(string path) => SafeTensorsFile.Read(path, Limits.CheckpointBytes);

    /// <summary>The train config stored in a checkpoint by `mvq train`, or null when it has none.</summary>
    public static TrainConfig? ReadTrainConfig(SafeTensorsContent file, string path)
    {
        if (!file.Metadata.TryGetValue("train_config", out var tj)) return null;
        try
        {
            var t = TrainConfig.FromJson(tj, "metadata 'train_config'");
            ConfigChecks.Check(t, "metadata 'train_config'");
            return t;
        }
        catch (MvqConfigException e) { throw new MvqInputException(path, e.Message, e); }
        catch (System.Text.Json.JsonException e)
        {
            throw new MvqInputException(path, "metadata 'train_config' is not a valid train config: " + JsonErrors.Describe(e));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException)
        {
            throw new MvqInputException(path, "metadata 'train_config' is not a valid train config: " + e.Message);
        }
    }

    /// <summary>Reads the model config stored in a checkpoint (validated).</summary>
    public static ModelConfig ReadConfig(SafeTensorsContent file, string path)
    {
        if (!file.Metadata.TryGetValue("format", out var f) || f != Format)
            throw new MvqInputException(path, $"not an MvqNative checkpoint (metadata 'format' is {(f is null ? "missing" : "'" + f + "'")}, expected '{Format}')");
        if (!file.Metadata.TryGetValue("model_config", out var json))
            throw new MvqInputException(path, "checkpoint has no model_config metadata");
        try { return ModelConfig.FromJson(json, "metadata 'model_config'"); }
        catch (MvqConfigException e) { throw new MvqInputException(path, e.Message, e); }
        catch (ArgumentException e) { throw new MvqInputException(path, e.Message); }
    }

    /// <summary>Builds the model stored in a checkpoint on a backend and loads its weights.</summary>
    public static Autoencoder Load(string path, Backend backend)
    {
        var file = ReadFile(path);
        var config = ReadConfig(file, path);
        CheckBeforeBuilding(file, config, path);
        var model = new Autoencoder(backend, config, seed: 0);
        try
        {
            try { model.Bottleneck.LoadMetadata(file.Metadata); }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                throw new MvqInputException(path, e.Message);
            }
            LoadParameters(model, file, path);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// Checks a checkpoint's config against the file before a model is built from it: the model must fit the memory
    /// limit, and the file must hold about as many values as the config's model has (a config that claims a far larger
    /// model than the file holds is refused before it can allocate anything).
    /// </summary>
    public static void CheckBeforeBuilding(SafeTensorsContent file, ModelConfig config, string path)
    {
        ConfigChecks.CheckMemory(config, 1, training: false, path);
        long held = file.Tensors.Where(t => !t.Name.StartsWith("optim.", StringComparison.Ordinal)).Sum(t => t.ElementCount);
        long needed = ConfigChecks.ParameterCount(config);
        // The count from the config is exact for the graphs of docs/model.md; the slack only guards against drift.
        if (needed > 2 * held + 4096)
            throw new MvqInputException(path, $"model_config describes a model of {needed:N0} parameters but the file holds {held:N0} values");
    }

    /// <summary>The values, or <see cref="TrainingDivergedException"/> naming <paramref name="what"/> when one is not finite (also used by PriorCheckpoint).</summary>
    internal static float[] Finite(float[] values, string what, int step, string kept)
    {
        foreach (var x in values)
            if (!float.IsFinite(x)) throw new TrainingDivergedException(step, what, kept);
        return values;
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

    /// <summary>
    /// Restores weights, optimiser moments and step, and the batcher position into a trainer built for the same model.
    /// Every value is checked before it is used: step counts within [0, 2^31), epoch and position non-negative, moments
    /// finite (second moments also non-negative). When the checkpoint was trained on a dataset of another size (or the
    /// saved position does not fit this dataset), training continues with a new data order (the next epoch's shuffle of
    /// this dataset) instead of failing; <see cref="TrainingState.NewDataOrder"/> says so.
    /// </summary>
    public static TrainingState RestoreTraining(string path, Trainer trainer) => RestoreTraining(SafeTensorsFile.Read(path), path, trainer);

    /// <summary>As <see cref="RestoreTraining(string, Trainer)"/> from an already read file.</summary>
    public static TrainingState RestoreTraining(SafeTensorsContent file, string path, Trainer trainer)
    {
        var md = file.Metadata;
        if (!md.ContainsKey("step")) throw new MvqInputException(path, "checkpoint has no training state (was it saved by `mvq train`?)");
        static long L(IReadOnlyDictionary<string, string> md, string k, string path, long min, long max)
        {
            if (!md.TryGetValue(k, out var s) || !long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                throw new MvqInputException(path, $"metadata '{k}' is missing or not an integer");
            if (v < min || v > max) throw new MvqInputException(path, $"metadata '{k}' is {v}, outside [{min}, {max}]");
            return v;
        }
        int step = (int)L(md, "step", path, 0, int.MaxValue - 1);
        int optStep = (int)L(md, "optimizer_step", path, 0, int.MaxValue - 1);
        long epoch = L(md, "batcher_epoch", path, 0, long.MaxValue / 2), pos = L(md, "batcher_position", path, 0, int.MaxValue);
        long? savedCount = md.ContainsKey("dataset_count") ? L(md, "dataset_count", path, 1, int.MaxValue) : null;
        TrainConfig train = ReadTrainConfig(file, path) ?? trainer.Config;

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
            var mv = Floats(tm, path);
            var vv = Floats(tv, path);
            foreach (var x in mv)
                if (!float.IsFinite(x)) throw new MvqInputException(path, $"optimizer moment m of '{name}' holds a non-finite value");
            foreach (var x in vv)
                if (!float.IsFinite(x) || x < 0) throw new MvqInputException(path, $"optimizer moment v of '{name}' holds a negative or non-finite value");
            m.CopyFrom(mv);
            v.CopyFrom(vv);
        }
        trainer.Step = step;
        trainer.Optimizer.StepCount = optStep;
        int count = trainer.Batcher.DatasetCount;
        bool newOrder = (savedCount is long c && c != count) || pos >= count;
        if (newOrder) { epoch++; pos = 0; }
        trainer.Batcher.Restore(new BatcherState(epoch, pos));
        return new TrainingState(step, train, epoch, pos, newOrder, savedCount);
    }
}
