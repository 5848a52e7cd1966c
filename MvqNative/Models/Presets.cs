// The built-in presets: one JSON file each under Models/Presets/ (embedded in the assembly), in the
// same format as `mvq train --config` files. The PyTorch reference (tools/reference) reads the same files.
using System.Reflection;
using MvqNative.Training;

namespace MvqNative.Models;

/// <summary>A named model and training recipe (`mvq train --preset NAME`).</summary>
internal sealed record Preset(string Name, string Description, ModelConfig Model, TrainConfig Train);

/// <summary>The built-in presets. Each call returns fresh, mutable copies.</summary>
internal static class Presets
{
    private const string Prefix = "presets/";
    private static readonly Assembly Self = typeof(Presets).Assembly;

    /// <summary>Preset names, sorted.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. Self.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .Select(n => n[Prefix.Length..^".json".Length]).Order(StringComparer.Ordinal)];

    /// <summary>The preset's JSON text (the file under MvqNative/Models/Presets/).</summary>
    public static string Json(string name)
    {
        using var s = Self.GetManifestResourceStream(Prefix + name + ".json")
            ?? throw new MvqUsageException($"unknown preset '{name}' (known: {string.Join(", ", Names)})");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    public static Preset Get(string name)
    {
        var f = RunConfig.Parse(Json(name), $"preset {name}", new ModelConfig(), new TrainConfig());
        return new Preset(name, f.Description ?? "", f.Model, f.Train);
    }
}
