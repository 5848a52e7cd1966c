using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Models;

/// <summary>
/// A discrete autoencoder (VQ-VAE or MVQ) as in docs/model.md: encoder trunk, bottleneck,
/// decoder. Forward(x [B, C, H, W]) returns x_hat of the same shape.
/// </summary>
internal sealed class Autoencoder : Module
{
    /// <summary>Creates bottlenecks of other kinds (MVQ); registered by their own files.</summary>
    public static readonly Dictionary<ModelKind, Func<Backend, ModelConfig, Random, Bottleneck>> BottleneckFactories = new()
    {
        [ModelKind.Vq] = (b, c, rng) => new VqBottleneck(b, c, rng),
    };

    private readonly Sequential _encoder, _decoder;

    public Autoencoder(Backend backend, ModelConfig config, int seed) : base(backend)
    {
        config.Validate();
        Config = config;
        var rng = new Random(seed);
        int c = config.Image.Channels, c0 = config.Encoder.Channels[0], c1 = config.Encoder.Channels[1];
        float slope = config.Encoder.Slope;
        Module Act() => new Activation(backend, ActivationKind.LeakyRelu, slope);

        _encoder = AddChild("encoder", new Sequential(backend,
            new Conv2d(backend, c, c0, 4, 2, 1, rng), Act(),
            new Conv2d(backend, c0, c1, 4, 2, 1, rng), Act(),
            new Conv2d(backend, c1, c1, 3, 1, 1, rng)));
        for (int i = 0; i < config.Encoder.ResBlocks; i++) _encoder.Add(ResBlock.Create(backend, c1, config.Encoder.ResHidden, slope, rng));
        _encoder.Add(Act());

        if (!BottleneckFactories.TryGetValue(config.Kind, out var make))
            throw new NotSupportedException($"model kind '{config.Kind.Name()}' is not available in this build");
        Bottleneck = AddChild("bottleneck", make(backend, config, rng));

        _decoder = AddChild("decoder", new Sequential(backend, new Conv2d(backend, c1, c1, 3, 1, 1, rng)));
        for (int i = 0; i < config.Encoder.ResBlocks; i++) _decoder.Add(ResBlock.Create(backend, c1, config.Encoder.ResHidden, slope, rng));
        _decoder.Add(Act()).Add(new Upsample2x(backend))
                .Add(new Conv2d(backend, c1, c0, 3, 1, 1, rng)).Add(Act()).Add(new Upsample2x(backend))
                .Add(new Conv2d(backend, c0, c, 3, 1, 1, rng));
    }

    public ModelConfig Config { get; }
    public Bottleneck Bottleneck { get; }

    /// <summary>When set, each section's time is recorded (benchmarks only: it synchronises); the bottleneck times its own parts with it.</summary>
    public Training.SectionTimer? Timer
    {
        get => _timer;
        set { _timer = value; Bottleneck.Timer = value; }
    }

    private Training.SectionTimer? _timer;

    public override Tensor Forward(Tensor x)
    {
        var im = Config.Image;
        if (x.Rank != 4 || x.Dim(1) != im.Channels || x.Dim(2) != im.Height || x.Dim(3) != im.Width)
            throw new ArgumentException($"model expects images [B, {im.Channels}, {im.Height}, {im.Width}], got [{x.ShapeString}]");
        using var _ = new Training.Section(Backend, Timer, "forward");
        Tensor h, z, y;
        using (new Training.Section(Backend, Timer, "encoder_forward")) h = _encoder.Forward(x);
        using (new Training.Section(Backend, Timer, "bottleneck_forward")) z = Bottleneck.Forward(h);
        using (new Training.Section(Backend, Timer, "decoder_forward")) y = _decoder.Forward(z);
        return y;
    }

    public override Tensor Backward(Tensor dy)
    {
        using var _ = new Training.Section(Backend, Timer, "backward");
        Tensor dz, dh, dx;
        using (new Training.Section(Backend, Timer, "decoder_backward")) dz = _decoder.Backward(dy);
        using (new Training.Section(Backend, Timer, "bottleneck_backward")) dh = Bottleneck.Backward(dz);
        using (new Training.Section(Backend, Timer, "encoder_backward")) dx = _encoder.Backward(dh);
        return dx;
    }

    /// <summary>Reconstruction from codes [B, CodeLength] (I32), without the encoder.</summary>
    public Tensor Decode(Tensor codes) => _decoder.Forward(Bottleneck.ForwardFromCodes(codes));
}
