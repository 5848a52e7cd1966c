// The feature network behind FID, KID, precision/recall, PRD and the perceptual distance: a small CNN
// classifier trained by the project (`mvq features train`), weights in a safetensors file.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MvqNative.Backends;
using MvqNative.Checkpoints;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Metrics;

/// <summary>Shape of a feature network: input image, conv widths [a, b, c], penultimate width, classes.</summary>
internal sealed class FeatureNetConfig
{
    public int Channels { get; set; } = 1;
    public int Height { get; set; } = 28;
    public int Width { get; set; } = 28;
    public int[] Widths { get; set; } = [16, 32, 64];
    public int Hidden { get; set; } = 128;
    public int Classes { get; set; } = 10;

    public void Validate()
    {
        if (Channels < 1 || Height % 4 != 0 || Width % 4 != 0 || Height < 4 || Width < 4)
            throw new ArgumentException("features config: channels >= 1, height and width positive multiples of 4");
        if (Widths.Length != 3 || Widths.Any(w => w < 1) || Hidden < 1 || Classes < 2)
            throw new ArgumentException("features config: three positive widths, hidden >= 1, classes >= 2");
    }

    public string ToJson() => JsonSerializer.Serialize(this, FeatureJson.Default.FeatureNetConfig);
    public static FeatureNetConfig FromJson(string json) => JsonSerializer.Deserialize(json, FeatureJson.Default.FeatureNetConfig) ?? throw new ArgumentException("empty features config");
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(FeatureNetConfig))]
internal sealed partial class FeatureJson : JsonSerializerContext { }

/// <summary>
/// x [B, C, H, W] in [0, 1] ->
/// conv.0 Conv(C -> a, k3 p1) relu | conv.1 Conv(a -> b, k4 s2 p1) relu | conv.2 Conv(b -> b, k3 p1) relu |
/// conv.3 Conv(b -> c, k4 s2 p1) relu | conv.4 Conv(c -> c, k3 p1) relu | flatten | fc.0 Linear(c H/4 W/4 -> hidden) relu
/// (the features) | fc.1 Linear(hidden -> classes) (logits). The five post-activation conv maps are the
/// perceptual distance's layers. Parameter names are the safetensors keys.
/// </summary>
internal sealed class FeatureNet : Module
{
    /// <summary>The network committed with the library (FashionMNIST 28x28 gray), embedded in the assembly.</summary>
    public const string DefaultResource = "features/fmnist-cnn.safetensors";
    public const string Format = "mvqnative-features/1";

    private readonly Conv2d[] _convs;
    private readonly Activation[] _convActs;
    private readonly Flatten _flatten;
    private readonly Linear _fc0, _fc1;
    private readonly Activation _fcAct;
    private readonly Tensor?[] _maps = new Tensor?[5];
    private Tensor? _features;

    public FeatureNet(Backend backend, FeatureNetConfig config, int seed = 0) : base(backend)
    {
        config.Validate();
        Config = config;
        var rng = new Random(seed);
        var (a, b, c) = (config.Widths[0], config.Widths[1], config.Widths[2]);
        var conv = AddChild("conv", new ConvStack(backend));
        _convs =
        [
            new Conv2d(backend, config.Channels, a, 3, 1, 1, rng), new Conv2d(backend, a, b, 4, 2, 1, rng), new Conv2d(backend, b, b, 3, 1, 1, rng),
            new Conv2d(backend, b, c, 4, 2, 1, rng), new Conv2d(backend, c, c, 3, 1, 1, rng),
        ];
        for (int i = 0; i < 5; i++) conv.Add(i, _convs[i]);
        _convActs = Enumerable.Range(0, 5).Select(_ => new Activation(backend, ActivationKind.Relu)).ToArray();
        _flatten = new Flatten(backend);
        _fcAct = new Activation(backend, ActivationKind.Relu);
        var acts = AddChild("act", new ConvStack(backend)); // parameter-free; children so that Dispose reaches their arenas
        for (int i = 0; i < 5; i++) acts.Add(i, _convActs[i]);
        acts.Add(5, _flatten); acts.Add(6, _fcAct);
        var fc = AddChild("fc", new ConvStack(backend));
        _fc0 = new Linear(backend, c * (config.Height / 4) * (config.Width / 4), config.Hidden, rng);
        _fc1 = new Linear(backend, config.Hidden, config.Classes, rng);
        fc.Add(0, _fc0); fc.Add(1, _fc1);
    }

    public FeatureNetConfig Config { get; }
    /// <summary>Width of the feature vector (penultimate layer).</summary>
    public int FeatureDim => Config.Hidden;
    /// <summary>Metadata read from the file it was loaded from (command, seed, accuracy), empty for a fresh network.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; } = new Dictionary<string, string>();

    /// <summary>The post-ReLU conv maps of the last Forward, [B, C_l, H_l, W_l] each (arena buffers).</summary>
    public IReadOnlyList<Tensor> Maps => _maps.Select(m => m ?? throw new InvalidOperationException("Forward first")).ToArray();
    /// <summary>The penultimate features of the last Forward [B, Hidden].</summary>
    public Tensor Features => _features ?? throw new InvalidOperationException("Forward first");

    /// <summary>x [B, C, H, W] -> logits [B, classes].</summary>
    public override Tensor Forward(Tensor x)
    {
        var h = x;
        for (int i = 0; i < 5; i++) h = _maps[i] = _convActs[i].Forward(_convs[i].Forward(h));
        _features = _fcAct.Forward(_fc0.Forward(_flatten.Forward(h)));
        return _fc1.Forward(_features);
    }

    /// <summary>dlogits [B, classes] -> dx; parameter gradients accumulate.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var g = _flatten.Backward(_fc0.Backward(_fcAct.Backward(_fc1.Backward(dy))));
        for (int i = 4; i >= 0; i--) g = _convs[i].Backward(_convActs[i].Backward(g));
        return g;
    }

    public void Save(string path, IReadOnlyDictionary<string, string>? extra = null)
    {
        var md = new Dictionary<string, string> { ["format"] = Format, ["config"] = Config.ToJson() };
        if (extra != null) foreach (var (k, v) in extra) md[k] = v;
        SafeTensorsFile.Write(path, Parameters().Select(p => SafeTensor.FromFloats(p.Name, p.Value.Shape.Select(d => (long)d).ToArray(), p.Value.ToArray())).ToList(), md);
    }

    /// <summary>Whether this build embeds the committed FashionMNIST network.</summary>
    public static bool HasDefault => typeof(FeatureNet).Assembly.GetManifestResourceInfo(DefaultResource) != null;

    /// <summary>Loads a feature network file; null path: the committed FashionMNIST network.</summary>
    public static FeatureNet Load(Backend backend, string? path = null)
    {
        SafeTensorsContent file;
        string name = path ?? DefaultResource;
        if (path is null)
        {
            using var s = typeof(FeatureNet).Assembly.GetManifestResourceStream(DefaultResource)
                ?? throw new MvqInputException(DefaultResource, "no feature network is embedded in this build; pass --features PATH");
            var tmp = Path.GetTempFileName();
            try
            {
                using (var f = File.Create(tmp)) s.CopyTo(f);
                file = SafeTensorsFile.Read(tmp);
            }
            finally { File.Delete(tmp); }
        }
        else
        {
            if (!File.Exists(path)) throw new MvqInputException(path, "feature network file does not exist");
            file = SafeTensorsFile.Read(path);
        }
        if (!file.Metadata.TryGetValue("format", out var fmt) || fmt != Format || !file.Metadata.TryGetValue("config", out var cfgJson))
            throw new MvqInputException(name, $"not a feature network (metadata format must be {Format})");
        FeatureNetConfig cfg;
        try { cfg = FeatureNetConfig.FromJson(cfgJson); cfg.Validate(); }
        catch (Exception e) when (e is JsonException or ArgumentException) { throw new MvqInputException(name, "bad feature network config: " + e.Message); }
        var net = new FeatureNet(backend, cfg);
        try
        {
            foreach (var p in net.Parameters())
            {
                if (!file.ByName.TryGetValue(p.Name, out var t)) throw new MvqInputException(name, $"missing tensor {p.Name}");
                if (t.DType != SafeDType.F32 || !t.Shape.SequenceEqual(p.Value.Shape.Select(d => (long)d)))
                    throw new MvqInputException(name, $"tensor {p.Name} is {t.DType} [{string.Join(", ", t.Shape)}], expected F32 [{string.Join(", ", p.Value.Shape)}]");
                p.Value.CopyFrom(t.ToFloats());
            }
            net.Metadata = file.Metadata;
        }
        catch { net.Dispose(); throw; }
        net.SetTraining(false);
        return net;
    }

    public override string ToString() =>
        $"feature CNN {Config.Channels}x{Config.Height}x{Config.Width}, widths {string.Join("/", Config.Widths)}, {FeatureDim} features, {Config.Classes} classes ({ParameterCount.ToString("N0", CultureInfo.InvariantCulture)} parameters)";

    /// <summary>Holds numbered children for parameter names (conv.0.weight, fc.1.bias); never run as a whole.</summary>
    private sealed class ConvStack : Module
    {
        public ConvStack(Backend backend) : base(backend) { }
        public void Add(int i, Module m) => AddChild(i.ToString(CultureInfo.InvariantCulture), m);
        public override Tensor Forward(Tensor x) => throw new NotSupportedException();
        public override Tensor Backward(Tensor dy) => throw new NotSupportedException();
    }
}
