// MvqRecipe.cs: what a new model is built from: a preset's (or a config file's) model and train settings.
using MvqNative.Models;
using MvqNative.Training;

namespace MvqNative;

/// <summary>
/// The settings a new <see cref="MvqModel"/> is built and trained with: a built-in preset, optionally with
/// sections replaced by a JSON config (<c>{"model": {...}, "train": {...}}</c>, the format of
/// <c>mvq train --config</c> and of the preset files). Immutable once made.
/// </summary>
public sealed class MvqRecipe
{
    private readonly string _model;
    private readonly string _train;

    private MvqRecipe(ModelConfig model, TrainConfig train, string source)
    {
        _model = model.ToJson();
        _train = train.ToJson();
        Source = source;
    }

    /// <summary>The names <see cref="Preset"/> accepts (fmnist-vq, fmnist-mvq, ...).</summary>
    public static IReadOnlyList<string> PresetNames => Presets.Names;

    /// <summary>Where the settings came from: "preset NAME" or the config file or text given.</summary>
    public string Source { get; }

    /// <summary>A built-in preset.</summary>
    /// <exception cref="MvqUsageException">Unknown preset name (the message lists the known ones).</exception>
    public static MvqRecipe Preset(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var p = Presets.Get(name);
        return new MvqRecipe(p.Model, p.Train, "preset " + name);
    }

    /// <summary>
    /// A preset (default fmnist-vq) whose "model" and/or "train" sections are replaced by those of
    /// <paramref name="json"/>; unknown or misspelt keys are refused.
    /// </summary>
    /// <param name="json">The config text, <c>{"model": {...}, "train": {...}}</c>.</param>
    /// <param name="basePreset">The preset whose sections stay when <paramref name="json"/> does not name them.</param>
    /// <param name="source">Name used in error messages (a file name).</param>
    /// <exception cref="MvqConfigException">Invalid JSON, an unknown key or a value out of range: "SOURCE: problem".</exception>
    public static MvqRecipe FromJson(string json, string basePreset = "fmnist-vq", string source = "config")
    {
        ArgumentNullException.ThrowIfNull(json);
        var p = Presets.Get(basePreset);
        var f = RunConfig.Parse(json, source, p.Model, p.Train);
        ConfigChecks.Check(f.Train, source);
        f.Model.Validate();
        return new MvqRecipe(f.Model, f.Train, source);
    }

    /// <summary>As <see cref="FromJson"/>, reading the config from a file (bounded size).</summary>
    /// <exception cref="MvqInputException">The file is missing, unreadable or too large.</exception>
    /// <exception cref="MvqConfigException">Its content is not a valid config.</exception>
    public static MvqRecipe FromFile(string path, string basePreset = "fmnist-vq")
    {
        ArgumentNullException.ThrowIfNull(path);
        var text = IO.InputFile.ReadAllText(path, IO.Limits.JsonBytes, "config file");
        return FromJson(text, basePreset, path);
    }

    /// <summary>The model section as JSON (camelCase keys, as in the preset files).</summary>
    public string ModelJson => _model;

    /// <summary>The train section as JSON (camelCase keys, as in the preset files).</summary>
    public string TrainJson => _train;

    internal ModelConfig Model() => ModelConfig.FromJson(_model, Source);

    internal TrainConfig Train() => TrainConfig.FromJson(_train, Source);
}
