// Strict reading of configuration JSON: one-line errors that name the offending key.
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace MvqNative.Models;

/// <summary>
/// Reads a config section with System.Text.Json (unknown keys are refused by the contexts'
/// <c>UnmappedMemberHandling.Disallow</c>) and turns its exceptions into
/// <see cref="MvqConfigException"/>: "SOURCE: unknown key 'model.encoder.resBlock'" or
/// "SOURCE: bad value for 'model.kind' (...)".
/// </summary>
internal static class ConfigJson
{
    public static T? Read<T>(string json, JsonTypeInfo<T> type, string source, string section)
    {
        try { return JsonSerializer.Deserialize(json, type); }
        catch (JsonException e) { throw Error(e, source, section); }
    }

    internal static MvqConfigException Error(JsonException e, string source, string section)
    {
        // STJ names an unmapped property in the message ("The JSON property 'x' could not be mapped ...") and
        // gives the path of the object that holds it.
        string path = (e.Path ?? "$").TrimStart('$').TrimStart('.');
        string key = section.Length == 0 ? path : path.Length == 0 ? section : $"{section}.{path}";
        const string Marker = "The JSON property '";
        int at = e.Message.IndexOf(Marker, StringComparison.Ordinal);
        if (at >= 0 && e.Message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            int start = at + Marker.Length, end = e.Message.IndexOf('\'', start);
            string name = end > start ? e.Message[start..end] : "?";
            if (!key.EndsWith(name, StringComparison.Ordinal)) key = key.Length == 0 ? name : $"{key}.{name}";
            return new MvqConfigException(source, $"unknown key '{key}'", e);
        }
        string detail = IO.JsonErrors.Expected(e) ?? e.Message.Split(". Path:", 2)[0];
        return new MvqConfigException(source, key.Length == 0 ? $"invalid JSON ({detail})" : $"bad value for '{key}' ({detail})", e);
    }
}
