using MvqNative.Training;

namespace MvqNative.Models;

/// <summary>A named model and training recipe (`mvq train --preset NAME`).</summary>
public sealed record Preset(string Name, string Description, ModelConfig Model, TrainConfig Train);

/// <summary>The built-in presets. Each call returns fresh, mutable copies.</summary>
public static class Presets
{
    public static IReadOnlyList<string> Names => ["fmnist-vq", "fmnist-vq-global", "fmnist-mvq", "fmnist-mvq-global", "imagenet64-vq", "imagenet64-mvq"];

    public static Preset Get(string name) => name switch
    {
        "fmnist-vq" => new(name, "VQ-VAE, FashionMNIST 28x28, 7x7 grid of tokens, K=128, D=16, EMA codebook",
            new ModelConfig { Kind = "vq", Head = "grid", Codes = 128, CodeDim = 16 }, new TrainConfig()),
        "fmnist-vq-global" => new(name, "VQ-VAE, FashionMNIST 28x28, 5 global tokens, K=128, D=16, EMA codebook",
            new ModelConfig { Kind = "vq", Head = "global", Tokens = 5, Codes = 128, CodeDim = 16 }, new TrainConfig()),
        "fmnist-mvq" => new(name, "MVQ, FashionMNIST 28x28, 7x7 grid primary and secondary tokens, K1=K2=64, D1=16, D2=16, J=64",
            new ModelConfig
            {
                Kind = "mvq", Head = "grid", Codes = 64, CodeDim = 16,
                Secondary = new SecondaryConfig { Tokens = 49, CodeDim = 16, Codes = 64 },
                Mvq = new MvqConfig { Hypotheses = 64, EvalHypotheses = 256, FHidden = 32, Chunk = 64 },
            }, new TrainConfig()),
        "fmnist-mvq-global" => new(name, "MVQ, FashionMNIST 28x28, L1=2 + L2=2 global tokens (+1 winner index), K1=K2=64, D=16, J=256",
            new ModelConfig
            {
                Kind = "mvq", Head = "global", Tokens = 2, Codes = 64, CodeDim = 16,
                Secondary = new SecondaryConfig { Tokens = 2, CodeDim = 16, Codes = 64 },
                Mvq = new MvqConfig { Hypotheses = 256, EvalHypotheses = 256, FHidden = 64, Chunk = 256 },
            }, new TrainConfig()),
        // The paper's ImageNet 64x64 setting (docs/metrics.md): 5 global primary tokens (set "tokens": 2 for the 2-token
        // setting), VQ with K entries against MVQ with K/2 primary and K/2 secondary entries, D = 32 (the reference's).
        "imagenet64-vq" => new(name, "VQ-VAE, ImageNet 64x64 RGB (imagenet64:PATH), 5 global tokens, K=256, D=32, EMA codebook",
            new ModelConfig { Kind = "vq", Head = "global", Tokens = 5, Codes = 256, CodeDim = 32, Image = new ImageShape { Channels = 3, Height = 64, Width = 64 }, Encoder = new EncoderConfig { Channels = [64, 128], ResHidden = 64 } },
            new TrainConfig { Lr = 5e-4f }),
        "imagenet64-mvq" => new(name, "MVQ, ImageNet 64x64 RGB (imagenet64:PATH), L1=5 + L2=2 global tokens (+1 winner), K1=K2=128, D1=D2=32, J=256",
            new ModelConfig
            {
                Kind = "mvq", Head = "global", Tokens = 5, Codes = 128, CodeDim = 32, Image = new ImageShape { Channels = 3, Height = 64, Width = 64 },
                Encoder = new EncoderConfig { Channels = [64, 128], ResHidden = 64 },
                Secondary = new SecondaryConfig { Tokens = 2, CodeDim = 32, Codes = 128 },
                Mvq = new MvqConfig { Hypotheses = 256, EvalHypotheses = 256, FHidden = 128, Chunk = 256 },
            }, new TrainConfig { Lr = 5e-4f }),
        _ => throw new ArgumentException($"unknown preset '{name}' (known: {string.Join(", ", Names)})"),
    };
}
