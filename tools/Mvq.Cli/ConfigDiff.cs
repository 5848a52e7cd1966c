// ConfigDiff.cs: what differs between two JSON configs, as "key old -> new" items for one-line messages.
using System.Text.Json.Nodes;

namespace MvqNative.Cli;

/// <summary>Compares two JSON objects leaf by leaf (dotted keys).</summary>
internal static class ConfigDiff
{
    /// <summary>"codes 128 -> 64, encoder.resBlocks 2 -> 3" (at most 8 items), or "" when equal.</summary>
    public static string Describe(string beforeJson, string afterJson)
    {
        var a = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var b = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Flatten(JsonNode.Parse(beforeJson), "", a);
        Flatten(JsonNode.Parse(afterJson), "", b);
        var items = new List<string>();
        foreach (var k in a.Keys.Union(b.Keys).OrderBy(k => k, StringComparer.Ordinal))
        {
            a.TryGetValue(k, out var x); b.TryGetValue(k, out var y);
            if (x != y) items.Add($"{k} {x ?? "(none)"} -> {y ?? "(none)"}");
        }
        return items.Count <= 8 ? string.Join(", ", items) : string.Join(", ", items.Take(8)) + $", and {items.Count - 8} more";
    }

    private static void Flatten(JsonNode? n, string prefix, IDictionary<string, string> into)
    {
        switch (n)
        {
            case JsonObject o:
                foreach (var (k, v) in o) Flatten(v, prefix.Length == 0 ? k : prefix + "." + k, into);
                break;
            case null:
                into[prefix] = "null";
                break;
            default:
                into[prefix] = n.ToJsonString();
                break;
        }
    }
}
