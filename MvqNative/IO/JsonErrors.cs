// JsonErrors.cs: System.Text.Json's errors in words (no .NET type names), for one-line messages about user JSON.
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MvqNative.IO;

/// <summary>Turns a <see cref="JsonException"/> into "KEY: expected a whole number" style text.</summary>
internal static partial class JsonErrors
{
    [GeneratedRegex(@"could not be converted to (?<t>[\w.`\[\]]+)")]
    private static partial Regex Converted();

    /// <summary>The key path (without "$.") and what was expected, or the parser's own message for syntax errors.</summary>
    public static string Describe(JsonException e)
    {
        var path = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "the top level" : e.Path.StartsWith("$.", StringComparison.Ordinal) ? e.Path[2..] : e.Path;
        return Expected(e) is string want ? $"{path}: {want}" : e.Message.ReplaceLineEndings(" ");
    }

    /// <summary>"expected a whole number from ..." for a value of the wrong type, else null.</summary>
    public static string? Expected(JsonException e)
    {
        var m = Converted().Match(e.Message);
        if (!m.Success) return null;
        string t = m.Groups["t"].Value;
        string want = t switch
        {
            _ when t.Contains("Int32") => $"a whole number from {int.MinValue} to {int.MaxValue}",
            _ when t.Contains("Int64") => "a whole number",
            _ when t.Contains("Single") || t.Contains("Double") => "a number",
            _ when t.Contains("Boolean") => "true or false",
            _ when t.Contains("String") => "a string",
            _ when t.Contains("[]") => "an array",
            _ => "an object",
        };
        return $"expected {want}";
    }
}
