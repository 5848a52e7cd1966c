// Tests of the feature network: save/load, the classifier loss and its training loop, the perceptual
// distance, and the accuracy of the committed FashionMNIST network.
using MvqNative.Backends.Cpu;
using MvqNative.Data;
using MvqNative.Metrics;
using Xunit;

namespace MvqNative.Tests.Metrics;

public class FeatureNetTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;
    private static FeatureNetConfig Tiny => new() { Channels = 1, Height = 8, Width = 8, Widths = [2, 3, 4], Hidden = 6, Classes = 3 };

    [Fact]
    public void SoftmaxCrossEntropyGradientMatchesCentralDifferences()
    {
        float[] logits = [0.3f, -1.2f, 2.0f, 0.5f, 0.1f, -0.4f];
        int[] labels = [2, 0];
        var g = new float[6];
        var (loss, correct) = FeatureTrainer.SoftmaxCrossEntropy(logits, labels, 3, g);
        Assert.Equal(2, correct);
        for (int i = 0; i < 6; i++)
        {
            var p = (float[])logits.Clone(); p[i] += 1e-3f;
            var m = (float[])logits.Clone(); m[i] -= 1e-3f;
            var scratch = new float[6];
            double num = (FeatureTrainer.SoftmaxCrossEntropy(p, labels, 3, scratch).Loss - FeatureTrainer.SoftmaxCrossEntropy(m, labels, 3, scratch).Loss) / 2e-3;
            Assert.Equal(num, g[i], 3);
        }
        Assert.True(loss > 0);
    }

    [Fact]
    public void SaveLoadRoundTripGivesTheSameFeatures()
    {
        using var dir = new TempDir();
        using var net = new FeatureNet(Cpu, Tiny, seed: 5);
        var img = Enumerable.Range(0, 2 * 64).Select(i => (i % 13) / 13f).ToArray();
        var f1 = FeatureExtractor.Extract(net, img, 2);
        net.Save(dir.File("f.safetensors"), new Dictionary<string, string> { ["seed"] = "5" });
        using var back = FeatureNet.Load(Cpu, dir.File("f.safetensors"));
        Assert.Equal("5", back.Metadata["seed"]);
        Assert.Equal(f1.Values, FeatureExtractor.Extract(back, img, 2).Values);
        File.WriteAllBytes(dir.File("bad.safetensors"), [1, 2, 3]);
        Assert.Throws<MvqInputException>(() => FeatureNet.Load(Cpu, dir.File("bad.safetensors")));
        Assert.Throws<MvqInputException>(() => FeatureNet.Load(Cpu, dir.File("missing.safetensors")));
    }

    [Fact]
    public void PerceptualDistanceIsZeroOnItselfSymmetricAndPositive()
    {
        using var net = new FeatureNet(Cpu, Tiny, seed: 2);
        var x = Enumerable.Range(0, 3 * 64).Select(i => (i * 7 % 17) / 17f).ToArray();
        var y = Enumerable.Range(0, 3 * 64).Select(i => (i * 5 % 11) / 11f).ToArray();
        var (_, _, self) = FeatureExtractor.Score(net, x, x, 3);
        Assert.All(self!, d => Assert.Equal(0.0, d, 12));
        var (_, _, xy) = FeatureExtractor.Score(net, x, y, 3);
        var (_, _, yx) = FeatureExtractor.Score(net, y, x, 3);
        for (int i = 0; i < 3; i++) { Assert.True(xy![i] > 0); Assert.Equal(xy[i], yx![i], 9); }
        // Each layer term is at most 4 (two unit vectors), five layers.
        Assert.All(xy!, d => Assert.InRange(d, 0, 20));
    }

    [Fact]
    public void ClassifierLearnsASeparableToyProblem()
    {
        // Class k: a bright horizontal bar at rows 2k..2k+1 of an 8x8 image, plus a little texture.
        int n = 384;
        var px = new float[n * 64]; var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int k = i % 3; labels[i] = k;
            for (int p = 0; p < 64; p++) px[i * 64 + p] = (p / 8 == 2 * k || p / 8 == 2 * k + 1) ? 0.9f : 0.1f * ((i + p) % 3);
        }
        var data = new ImageDataset("toy", n, 1, 8, 8, px, labels);
        using var net = new FeatureNet(Cpu, Tiny, seed: 1);
        double acc = FeatureTrainer.Train(net, data, data, new FeatureTrainConfig(Epochs: 6, Batch: 32, Lr: 1e-2f, WarmupSteps: 5, MaxShift: 0, Flip: false, Seed: 1));
        Assert.True(acc > 0.95, $"accuracy {acc}");
    }

    [Fact]
    public void CommittedNetworkReachesItsRecordedAccuracy()
    {
        using var net = FeatureNet.Load(Cpu);
        Assert.Equal((1, 28, 28), (net.Config.Channels, net.Config.Height, net.Config.Width));
        double recorded = double.Parse(net.Metadata["test_accuracy"], System.Globalization.CultureInfo.InvariantCulture);
        double acc = FeatureTrainer.Accuracy(net, FashionMnist.Load("test"));
        // Issue 11 asks for >= 93%. The committed weights (the end of `mvq features train --epochs 18 --seed 1`: docs/metrics.md)
        // reach 93.96% (9396 of 10,000); the bound is the issue's, so a regression in the network or its loading below it fails here.
        Assert.True(acc >= 0.93, $"accuracy {acc}");
        Assert.Equal(recorded, acc, 3); // the same weights and data: the same figure up to float summation order
        Assert.Contains("features train", net.Metadata["command"]);
        Assert.Equal("1", net.Metadata["seed"]);
    }
}
