using MvqNative.Backends.Cpu;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Models;
using MvqNative.Quantizers;
using MvqNative.Training;
using Xunit;

namespace MvqNative.Tests.EndToEnd;

/// <summary>Short real training runs on a FashionMNIST subset: the loss falls below a bound, and resume is exact.</summary>
public class TrainingTests
{
    internal static ModelConfig SmallVq(HeadKind head = HeadKind.Grid) => new()
    {
        Kind = ModelKind.Vq, Head = head, Tokens = 4, Codes = 32, CodeDim = 8,
        Encoder = new EncoderConfig { Channels = [8, 16], ResBlocks = 1, ResHidden = 8 },
        Quantizer = new QuantizerConfig { Mode = VqMode.Ema, RestartEvery = 3, KMeansInit = true },
    };

    internal static ImageDataset Subset(int n) => FashionMnist.Load("train").Subset(n);

    [Fact]
    public void ShortRunOnFashionMnistReachesLossBound()
    {
        var data = Subset(1024);
        var tc = new TrainConfig { Steps = 150, Batch = 32, Lr = 3e-3f, WarmupSteps = 10, LogEvery = 10, Seed = 3 };
        using var model = new Autoencoder(CpuBackend.Instance, SmallVq(), tc.Seed);
        using var trainer = new Trainer(CpuBackend.Instance, model, tc, data);
        var logs = new List<StepStats>();
        while (trainer.Step < tc.Steps) if (trainer.TrainStep() is { } s) logs.Add(s);
        // Pixels have variance ~0.1 around their mean; a working autoencoder gets well under a third of it.
        Assert.True(logs[0].Reconstruction > 0.05, $"first logged reconstruction loss {logs[0].Reconstruction} is suspiciously low");
        Assert.True(logs[^1].Reconstruction < 0.03, $"reconstruction loss after {tc.Steps} steps is {logs[^1].Reconstruction}, bound 0.03");
        Assert.All(logs, l => Assert.True(double.IsFinite(l.Loss)));
    }

    [Fact]
    public void ResumeFromCheckpointReproducesLossTrajectoryBitForBit()
    {
        var data = Subset(256);
        var tc = new TrainConfig { Steps = 10, Batch = 16, Lr = 2e-3f, WarmupSteps = 2, LogEvery = 1, Seed = 5 };
        List<double> Run(int from, string? ckpt, int until, string? saveAt)
        {
            var losses = new List<double>();
            using var model = new Autoencoder(CpuBackend.Instance, SmallVq(), tc.Seed);
            using var trainer = new Trainer(CpuBackend.Instance, model, tc, data);
            if (ckpt != null) ModelCheckpoint.RestoreTraining(ckpt, trainer);
            Assert.Equal(from, trainer.Step);
            while (trainer.Step < until) losses.Add(trainer.TrainStep()!.Loss);
            if (saveAt != null) ModelCheckpoint.Save(saveAt, model, trainer);
            return losses;
        }
        var dir = Directory.CreateTempSubdirectory("mvq-resume");
        try
        {
            var path = Path.Combine(dir.FullName, "half.safetensors");
            var straight = Run(0, null, 10, null);
            var first = Run(0, null, 5, path);
            var second = Run(5, path, 10, null);
            Assert.Equal(straight.Take(5), first);
            Assert.Equal(straight.Skip(5), second);
            Assert.NotEqual(straight[0], straight[^1]);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void DivergenceIsReportedNotHidden()
    {
        var data = Subset(64);
        var tc = new TrainConfig { Steps = 3, Batch = 8, Lr = 1e-3f, LogEvery = 1 };
        using var model = new Autoencoder(CpuBackend.Instance, SmallVq(), 1);
        using var trainer = new Trainer(CpuBackend.Instance, model, tc, data);
        // Poison a weight: the next logged step must throw, not print NaN.
        var p = model.Parameters().First(x => x.Name.EndsWith("weight", StringComparison.Ordinal));
        var w = p.Value.ToArray(); w[0] = float.NaN; p.Value.CopyFrom(w);
        Assert.Throws<TrainingDivergedException>(() => trainer.TrainStep());
    }

    [Fact]
    public void NoBufferLeaksAfterDispose()
    {
        using var cpu = new CpuBackend();   // a private backend: its counter sees only this test
        var data = Subset(32);
        var tc = new TrainConfig { Steps = 2, Batch = 8, LogEvery = 1 };
        using (var model = new Autoencoder(cpu, SmallVq(HeadKind.Global), 1))
        using (var trainer = new Trainer(cpu, model, tc, data))
        {
            trainer.TrainStep();
            Assert.True(cpu.LiveBuffers > 0);
        }
        Assert.Equal(0, cpu.LiveBuffers);
        Assert.Equal(0, cpu.LiveBytes);
    }
}
