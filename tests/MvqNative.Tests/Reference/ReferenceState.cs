// Loader of the PyTorch reference states (tests/data/reference/*.safetensors, written by
// tools/reference/mvq_reference.py): the tensors by key, the metadata, the reference's JSON
// config converted to our ModelConfig, and the relative-error comparison the tests use.
using System.Text.Json;
using MvqNative.Layers;
using MvqNative.Quantizers;
using MvqNative.Checkpoints;
using MvqNative.Models;
using Xunit;

namespace MvqNative.Tests.Reference;

/// <summary>One reference state file: keys `param/*`, `input/*`, `fwd/*`, `loss/*`, `grad/*`, `step0/*`, `train/*`, `final/*`.</summary>
internal sealed class ReferenceState
{
    private readonly SafeTensorsContent _file;

    private ReferenceState(string path, SafeTensorsContent file)
    {
        Path = path;
        _file = file;
        var md = file.Metadata;
        RawConfigJson = md["config"];
        Config = ConvertConfig(RawConfigJson);
        Batch = int.Parse(md["batch"], System.Globalization.CultureInfo.InvariantCulture);
        Steps = int.Parse(md["steps"], System.Globalization.CultureInfo.InvariantCulture);
        DecayParams = JsonSerializer.Deserialize<string[]>(md["decay_params"]) ?? throw new InvalidDataException($"{path}: decay_params is empty");
        using var opt = JsonDocument.Parse(md["optimizer"]);
        var o = opt.RootElement;
        Lr = o.GetProperty("lr").GetSingle();
        Beta1 = o.GetProperty("betas")[0].GetSingle();
        Beta2 = o.GetProperty("betas")[1].GetSingle();
        Eps = o.GetProperty("eps").GetSingle();
        WeightDecay = o.GetProperty("weight_decay").GetSingle();
        Clip = o.GetProperty("clip").GetSingle();
    }

    public string Path { get; }
    /// <summary>The reference's JSON config (snake_case keys, tools/reference/README.md).</summary>
    public string RawConfigJson { get; }
    /// <summary>Our config of the same graph, k-means init and dead-code restarts off.</summary>
    public ModelConfig Config { get; }
    public int Batch { get; }
    public int Steps { get; }
    /// <summary>Names of the parameters AdamW decays in the reference.</summary>
    public IReadOnlyList<string> DecayParams { get; }
    public float Lr { get; }
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; }
    public float Clip { get; }

    /// <summary>Directory tests/data/reference, found by walking up from the test binaries to the repository root.</summary>
    public static string DataDirectory
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                var candidate = System.IO.Path.Combine(dir.FullName, "tests", "data", "reference");
                if (File.Exists(System.IO.Path.Combine(candidate, "vq_grid.safetensors"))) return candidate;
            }
            throw new DirectoryNotFoundException($"tests/data/reference not found above {AppContext.BaseDirectory}");
        }
    }


    /// <summary>Reads tests/data/reference/<paramref name="name"/>.safetensors.</summary>
    public static ReferenceState Load(string name)
    {
        var path = System.IO.Path.Combine(DataDirectory, name + ".safetensors");
        return new ReferenceState(path, SafeTensorsFile.Read(path));
    }

    public bool Has(string key) => _file.ByName.ContainsKey(key);

    public float[] F(string key) => Get(key).ToFloats();

    public int[] I(string key) => Get(key).ToInt32s();

    public int[] Shape(string key) => Get(key).Shape.Select(d => checked((int)d)).ToArray();

    /// <summary>The names after <paramref name="prefix"/> of every key that starts with it, sorted.</summary>
    public List<string> Names(string prefix) =>
        _file.Tensors.Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .Select(n => n[prefix.Length..]).OrderBy(n => n, StringComparer.Ordinal).ToList();

    private SafeTensor Get(string key) =>
        _file.ByName.TryGetValue(key, out var t) ? t : throw new KeyNotFoundException($"{Path}: no tensor '{key}'");

    /// <summary>
    /// Converts the reference's config JSON (tools/reference/README.md, "Config JSON") to our
    /// <see cref="ModelConfig"/>: same graph; k-means init and dead-code restarts off (the
    /// reference models neither).
    /// </summary>
    public static ModelConfig ConvertConfig(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        var enc = r.GetProperty("encoder");
        var img = r.GetProperty("image");
        var q = r.GetProperty("quantizer");
        var c = new ModelConfig
        {
            Kind = r.GetProperty("kind").GetString() == "mvq" ? ModelKind.Mvq : ModelKind.Vq,
            Image = new ImageShape { Channels = img.GetProperty("channels").GetInt32(), Height = img.GetProperty("height").GetInt32(), Width = img.GetProperty("width").GetInt32() },
            Encoder = new EncoderConfig
            {
                Channels = enc.GetProperty("channels").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                ResBlocks = enc.GetProperty("res_blocks").GetInt32(),
                ResHidden = enc.GetProperty("res_hidden").GetInt32(),
                Slope = r.GetProperty("activation").GetSingle(),
            },
            Head = r.GetProperty("head").GetString() == "global" ? HeadKind.Global : HeadKind.Grid,
            CodeDim = r.GetProperty("code_dim").GetInt32(),
            Codes = r.GetProperty("codes").GetInt32(),
            Quantizer = new QuantizerConfig
            {
                Mode = q.GetProperty("mode").GetString() == "ema" ? VqMode.Ema : VqMode.Gradient,
                Beta = q.GetProperty("beta").GetSingle(),
                Decay = q.GetProperty("decay").GetSingle(),
                RestartEvery = 0,
                KMeansInit = false,
            },
            Loss = LossKind.Mse,
        };
        // Grid heads take L from the latent grid; our Tokens is unused then, so keep its default.
        if (r.TryGetProperty("tokens", out var tokens)) c.Tokens = tokens.GetInt32();
        if (c.Kind == ModelKind.Mvq)
        {
            var s = r.GetProperty("secondary");
            var m = r.GetProperty("mvq");
            c.Secondary = new SecondaryConfig
            {
                Tokens = s.TryGetProperty("tokens", out var t2) ? t2.GetInt32() : c.LatentHeight * c.LatentWidth,
                CodeDim = s.GetProperty("code_dim").GetInt32(),
                Codes = s.GetProperty("codes").GetInt32(),
            };
            c.Mvq = new MvqConfig
            {
                Hypotheses = m.GetProperty("hypotheses").GetInt32(),
                DropRate = m.GetProperty("drop_rate").GetSingle(),
                FHidden = m.GetProperty("f_hidden").GetInt32(),
                Chunk = m.GetProperty("chunk").GetInt32(),
            };
        }
        c.Validate();
        return c;
    }
}

/// <summary>Tensor comparisons with a tolerance relative to the reference tensor's largest magnitude.</summary>
internal static class RefCompare
{
    /// <summary>max |actual - expected| / max(max |expected|, 1e-30), in float64.</summary>
    public static double RelativeError(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double maxErr = 0, maxRef = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            maxErr = Math.Max(maxErr, Math.Abs((double)actual[i] - expected[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)expected[i]));
        }
        return maxErr / Math.Max(maxRef, 1e-30);
    }

    /// <summary>Asserts equal lengths, finite values and a relative error of at most <paramref name="tolerance"/>.</summary>
    public static double AssertClose(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, the reference has {expected.Length}");
        foreach (var v in actual) Assert.True(float.IsFinite(v), $"{what}: non-finite value");
        double err = RelativeError(expected, actual);
        Assert.True(err <= tolerance, $"{what}: max abs error / max abs reference = {err:E3} > {tolerance:E1}");
        return err;
    }

    /// <summary>Asserts bitwise-equal floats (values gathered from the same codebook).</summary>
    public static void AssertBitwise(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, the reference has {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]), $"{what}[{i}] = {actual[i]:R}, the reference has {expected[i]:R}");
    }

    /// <summary>Asserts bitwise-equal integers (indices, winners).</summary>
    public static void AssertExact(string what, ReadOnlySpan<int> expected, ReadOnlySpan<int> actual)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, the reference has {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i], $"{what}[{i}] = {actual[i]}, the reference has {expected[i]}");
    }
}
