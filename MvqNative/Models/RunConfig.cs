// A run configuration file: {"model": {...}, "train": {...}} (presets add "description").
using System.Text.Json;
using MvqNative.Training;

namespace MvqNative.Models;

/// <summary>
/// The contents of a `--config` file or a preset: a model section and a train section, each
/// replacing the base's section when present. Any other top-level key, and any unknown key
/// inside a section, is refused with one line naming it.
/// </summary>
internal sealed record RunConfig(ModelConfig Model, TrainConfig Train, string? Description)
{
    public static RunConfig Parse(string json, string source, ModelConfig baseModel, TrainConfig baseTrain)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new MvqConfigException(source, $"invalid JSON ({e.Message})", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new MvqConfigException(source, "expected a JSON object {\"model\": {...}, \"train\": {...}}");
            ModelConfig model = baseModel; TrainConfig train = baseTrain; string? description = null;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name is "model" or "train" && p.Value.ValueKind != JsonValueKind.Object)
                    throw new MvqConfigException(source, $"'{p.Name}' must be an object, not {p.Value.ValueKind.ToString().ToLowerInvariant()}");
                switch (p.Name)
                {
                    case "model": model = ModelConfig.FromJson(p.Value.GetRawText(), source); break;
                    case "train": train = TrainConfig.FromJson(p.Value.GetRawText(), source); break;
                    case "description" when p.Value.ValueKind == JsonValueKind.String: description = p.Value.GetString(); break;
                    default: throw new MvqConfigException(source, $"unknown key '{p.Name}' (a config has \"model\" and \"train\" sections)");
                }
            }
            model.Validate(source);
            return new RunConfig(model, train, description);
        }
    }
}
