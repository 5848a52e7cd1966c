// CodesFile.cs: codes.json, the discrete codes of `mvq encode` that `mvq decode` turns back into images.
using System.Text.Json;
using System.Text.Json.Nodes;
using MvqNative.Models;

namespace MvqNative.IO;

/// <summary>
/// codes.json: { "format", "model": { kind, config_hash, image [C, H, W], tokens_per_instance, code_length },
/// "segments": [ { name, start, length, vocabulary } ] (k1 [L1]; k1 [L1], k2 [L2], w [1] for MVQ),
/// "instances": [ { "source", "code": [code_length ints] } ] }.
/// </summary>
internal static class CodesFile
{
    public const string Format = "mvqnative-codes/1";

    /// <summary>SHA-256 (hex) of what decoding depends on besides the weights (see <see cref="ModelIdentity.ConfigHash"/>).</summary>
    public static string ConfigHash(Autoencoder model) => ModelIdentity.ConfigHash(model);

    /// <summary>Writes codes [n, CodeLength] with their source names, atomically.</summary>
    public static void Write(string path, Autoencoder model, IReadOnlyList<string> names, int[] codes) => Write(path, model, names, codes, null);

    /// <summary>
    /// As above; <paramref name="maskWords"/> (MVQ, one per instance, or null) are written as each instance's "mask"
    /// (the D2-bit word decoding uses instead of the bank's word EvalBank[w]: a random mask).
    /// </summary>
    public static void Write(string path, Autoencoder model, IReadOnlyList<string> names, int[] codes, uint[]? maskWords)
    {
        var segs = model.Bottleneck.Segments;
        int len = model.Bottleneck.CodeLength;
        var im = model.Config.Image;
        var o = new JsonObject
        {
            ["format"] = Format,
            ["model"] = new JsonObject
            {
                ["kind"] = model.Config.Kind.Name(),
                ["config_hash"] = ConfigHash(model),
                ["image"] = new JsonArray(im.Channels, im.Height, im.Width),
                ["tokens_per_instance"] = model.Config.TokensPerInstance,
                ["code_length"] = len,
            },
            ["segments"] = new JsonArray(segs.Select(s => (JsonNode)new JsonObject
            {
                ["name"] = s.Name, ["start"] = s.Start, ["length"] = s.Length, ["vocabulary"] = s.Vocabulary,
            }).ToArray()),
            ["instances"] = new JsonArray(names.Select((n, i) => (JsonNode)new JsonObject
            {
                ["source"] = n,
                ["code"] = new JsonArray(codes.AsSpan(i * len, len).ToArray().Select(c => (JsonNode)c).ToArray()),
            }).ToArray()),
        };
        if (maskWords is not null)
            for (int i = 0; i < names.Count; i++) o["instances"]![i]!["mask"] = maskWords[i];
        var text = o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteText(path, text);
    }

    /// <summary>
    /// Reads and validates a codes file against a model: format, config hash, segment layout, code lengths
    /// and ranges. Every problem is an <see cref="MvqInputException"/> naming the file.
    /// </summary>
    public static (string[] Names, int[] Codes) Read(string path, Autoencoder model)
    {
        var (names, codes, _) = ReadWithMasks(path, model);
        return (names, codes);
    }

    /// <summary>As <see cref="Read"/>, plus the instances' random mask words (null when no instance has one; all or none must).</summary>
    public static (string[] Names, int[] Codes, uint[]? Masks) ReadWithMasks(string path, Autoencoder model)
    {
        JsonNode? root;
        var text = InputFile.ReadAllText(path, Limits.JsonBytes, "codes file");
        try { root = JsonNode.Parse(text); }
        catch (JsonException e) { throw new MvqInputException(path, "invalid JSON: " + e.Message); }
        try
        {
            if (root is not JsonObject o) throw Bad("not a JSON object");
            if (o["format"]?.GetValue<string>() != Format) throw Bad($"not a codes file (format must be '{Format}')");
            var hash = o["model"]?["config_hash"]?.GetValue<string>() ?? throw Bad("missing model.config_hash");
            var mine = ConfigHash(model);
            if (hash != mine) throw Bad($"codes were made by a different model (config hash {Short(hash)}, this model {Short(mine)}, kind {model.Config.Kind.Name()})");
            var segs = model.Bottleneck.Segments;
            var fileSegs = o["segments"] as JsonArray ?? throw Bad("missing segments");
            if (fileSegs.Count != segs.Count) throw Bad($"{fileSegs.Count} segments, the model has {segs.Count}");
            for (int k = 0; k < segs.Count; k++)
            {
                var s = segs[k]; var f = fileSegs[k];
                if (f?["name"]?.GetValue<string>() != s.Name || f["start"]?.GetValue<int>() != s.Start || f["length"]?.GetValue<int>() != s.Length || f["vocabulary"]?.GetValue<int>() != s.Vocabulary)
                    throw Bad($"segment {k} is not {s.Name} (start {s.Start}, length {s.Length}, vocabulary {s.Vocabulary})");
            }
            var inst = o["instances"] as JsonArray ?? throw Bad("missing instances");
            if (inst.Count == 0) throw Bad("no instances");
            int len = model.Bottleneck.CodeLength;
            var names = new string[inst.Count];
            var codes = new int[inst.Count * len];
            for (int i = 0; i < inst.Count; i++)
            {
                names[i] = inst[i]?["source"]?.GetValue<string>() ?? $"#{i}";
                var code = inst[i]?["code"] as JsonArray ?? throw Bad($"instance {i} ({names[i]}) has no code");
                if (code.Count != len) throw Bad($"instance {i} ({names[i]}) has {code.Count} integers, the model's codes have {len}");
                for (int t = 0; t < len; t++) codes[i * len + t] = code[t]?.GetValue<int>() ?? throw Bad($"instance {i} ({names[i]}): null in code");
                foreach (var s in segs)
                    for (int t = 0; t < s.Length; t++)
                    {
                        int v = codes[i * len + s.Start + t];
                        if ((uint)v >= (uint)s.Vocabulary) throw Bad($"instance {i} ({names[i]}): {s.Name}[{t}] = {v} is outside [0, {s.Vocabulary})");
                    }
            }
            uint[]? masks = null;
            int withMask = inst.Count(x => x?["mask"] is not null);
            if (withMask > 0)
            {
                if (withMask != inst.Count) throw Bad($"{withMask} of {inst.Count} instances have a mask (all or none must)");
                if (model.Bottleneck is not MvqBottleneck mb) throw Bad("instances have masks, but the model is not MVQ");
                masks = new uint[inst.Count];
                uint limit = mb.Sizes.D2 >= 32 ? uint.MaxValue : (1u << mb.Sizes.D2) - 1;
                for (int i = 0; i < inst.Count; i++)
                {
                    masks[i] = inst[i]!["mask"]!.GetValue<uint>();
                    if (masks[i] > limit) throw Bad($"instance {i} ({names[i]}): mask {masks[i]} has more than {mb.Sizes.D2} bits");
                }
            }
            return (names, codes, masks);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or JsonException or ArgumentException)
        {
            // Wrong JSON types (a string where a number belongs, ...); ArgumentException: a duplicated key, which
            // JsonNode.Parse accepts and the first lookup in that object then rejects.
            throw Bad("malformed: " + e.Message);
        }

        MvqInputException Bad(string problem) => new(path, problem);
    }

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] : hash;
}
