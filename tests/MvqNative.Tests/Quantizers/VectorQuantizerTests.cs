// Tests of the VectorQuantizer layer: loss and gradients on a tiny case, EMA training
// updates, dead-code restart, k-means initialisation and usage statistics.
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Quantizers;
using Xunit;

namespace MvqNative.Tests.Quantizers;

public class VectorQuantizerTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    [Fact]
    public void GradientModeTinyCaseLossAndGradients()
    {
        using var vq = new VectorQuantizer(Cpu, new VqOptions { Codes = 2, Dim = 2, Beta = 0.25f, RestartEvery = 0 });
        vq.Codebook.Value.CopyFrom([0f, 0f, 2f, 2f]);
        using var z = Cpu.FromArray([0.5f, 1f, 3f, 4f, 0f, -1f], 3, 2);
        var q = vq.Forward(z);
        Assert.Equal([0, 1, 0], vq.Indices.ToIntArray());
        Assert.Equal([0f, 0f, 2f, 2f, 0f, 0f], q.ToArray());
        // mse = (0.25 + 1 + 1 + 4 + 0 + 1) / 6; loss = (1 + beta) mse
        Assert.Equal(1.25 * 7.25 / 6, vq.Loss.ToArray()[0], 6);
        using var dq = Cpu.FromArray([0.5f, 0f, 0f, 0f, 0f, -1f], 3, 2);
        var dz = vq.Backward(dq).ToArray();
        float[] zh = [0.5f, 1, 3, 4, 0, -1]; float[] qh = [0, 0, 2, 2, 0, 0]; float[] dqh = [0.5f, 0, 0, 0, 0, -1];
        for (int i = 0; i < 6; i++) Assert.Equal(dqh[i] + 0.25 * 2 * (zh[i] - qh[i]) / 6, dz[i], 6);
        // code 0 (rows 0, 2): 2 * ((0 - 0.5) + 0, (0 - 1) + 1) / 6; code 1 (row 1): 2 * (2 - 3, 2 - 4) / 6
        double[] want = [-1.0 / 6, 0, -1.0 / 3, -2.0 / 3];
        var g = vq.Codebook.Grad.ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], g[i], 6);
        Assert.True(vq.Codebook.Trainable);
        Assert.False(vq.Codebook.Decay);
    }

    [Fact]
    public void EmaModeUpdatesInTrainingOnlyAndLeavesTheGradientAlone()
    {
        using var vq = new VectorQuantizer(Cpu, new VqOptions { Codes = 2, Dim = 1, Mode = VqMode.Ema, Decay = 0.5f, Eps = 0f, Beta = 0.25f, RestartEvery = 0 });
        vq.Codebook.Value.CopyFrom([0f, 8f]);
        vq.EmbedSum!.Value.CopyFrom([0f, 8f]);
        using var z = Cpu.FromArray([1f, 3f, 10f], 3, 1);

        vq.SetTraining(false);
        vq.Forward(z);
        Assert.Equal([0f, 8f], vq.Codebook.Value.ToArray());
        Assert.Equal(0.25 * (1 + 9 + 4) / 3, vq.Loss.ToArray()[0], 6); // beta * mse in EMA mode

        vq.SetTraining(true);
        var q = vq.Forward(z);
        Assert.Equal([0f, 0f, 8f], q.ToArray()); // q from the codebook before the update
        // cs = 0.5 + 0.5*[2, 1] = [1.5, 1]; es = 0.5*[0, 8] + 0.5*[4, 10] = [2, 9]; n_k = cs_k (eps 0)
        Assert.Equal([1.5f, 1f], vq.ClusterSize!.Value.ToArray());
        Assert.Equal([2f, 9f], vq.EmbedSum.Value.ToArray());
        var cb = vq.Codebook.Value.ToArray();
        Assert.Equal(2 / 1.5, cb[0], 6);
        Assert.Equal(9.0, cb[1], 6);

        using var dq = Cpu.Zeros(3, 1);
        vq.Backward(dq);
        Assert.All(vq.Codebook.Grad.ToArray(), v => Assert.Equal(0f, v));
        Assert.False(vq.Codebook.Trainable);
        Assert.Equal(["codebook", "cluster_size", "embed_sum", "restart_usage", "steps"], vq.Parameters().Select(p => p.Name));
    }

    /// <summary>8 codes: entries 0-3 sit on the data, entries 4-7 far away (never chosen).</summary>
    private static (VectorQuantizer Vq, Tensors.Tensor Z) DeadCodeSetup(VqMode mode, int restartEvery)
    {
        var vq = new VectorQuantizer(Cpu, new VqOptions { Codes = 8, Dim = 2, Mode = mode, RestartEvery = restartEvery, DeadThreshold = 0.5f, RestartNoise = 0.01f });
        float[] cb = [1, 1, -1, 1, 1, -1, -1, -1, 50, 50, 60, 60, -70, 70, 80, -80];
        vq.Codebook.Value.CopyFrom(cb);
        vq.EmbedSum?.Value.CopyFrom(cb);
        var rng = new Random(9);
        var z = new float[40 * 2];
        for (int i = 0; i < 40; i++)
        {
            z[2 * i] = (i % 2 == 0 ? 1 : -1) + 0.1f * (float)(rng.NextDouble() - 0.5);
            z[2 * i + 1] = ((i / 2) % 2 == 0 ? 1 : -1) + 0.1f * (float)(rng.NextDouble() - 0.5);
        }
        return (vq, Cpu.FromArray(z, 40, 2));
    }

    [Theory]
    [InlineData(VqMode.Gradient)]
    [InlineData(VqMode.Ema)]
    public void RestartReseedsExactlyTheDeadEntriesAndResetsTheirStatistics(object modeArg)
    {
        var mode = (VqMode)modeArg;   // object: the enum is internal to the library
        var (vq, z) = DeadCodeSetup(mode, restartEvery: 0);
        using var _ = vq; using var __ = z;
        vq.Forward(z);
        var before = vq.Codebook.Value.ToArray();
        var csBefore = vq.ClusterSize?.Value.ToArray();
        var esBefore = vq.EmbedSum?.Value.ToArray();
        int restarted = vq.RestartDeadCodes(z, new Random(1));
        Assert.Equal(4, restarted);
        var after = vq.Codebook.Value.ToArray();
        var zh = z.ToArray();
        for (int k = 0; k < 8; k++)
        {
            if (k < 4)
            {
                for (int j = 0; j < 2; j++) Assert.Equal(BitConverter.SingleToInt32Bits(before[2 * k + j]), BitConverter.SingleToInt32Bits(after[2 * k + j]));
                continue;
            }
            // A dead entry now sits within a few noise widths (0.01 * RMS ~ 0.01) of some encoder output.
            double nearest = Enumerable.Range(0, 40).Min(i => Math.Pow(zh[2 * i] - after[2 * k], 2) + Math.Pow(zh[2 * i + 1] - after[2 * k + 1], 2));
            Assert.True(Math.Sqrt(nearest) < 0.1, $"entry {k} re-seeded {Math.Sqrt(nearest)} away from the data");
        }
        if (mode == VqMode.Ema)
        {
            var cs = vq.ClusterSize!.Value.ToArray();
            var es = vq.EmbedSum!.Value.ToArray();
            for (int k = 0; k < 8; k++)
            {
                if (k < 4)
                {
                    Assert.Equal(csBefore![k], cs[k]);
                    Assert.Equal(esBefore![2 * k], es[2 * k]); Assert.Equal(esBefore[2 * k + 1], es[2 * k + 1]);
                }
                else
                {
                    Assert.Equal(1f, cs[k]);
                    Assert.Equal(after[2 * k], es[2 * k]); Assert.Equal(after[2 * k + 1], es[2 * k + 1]);
                }
            }
        }
        // Usage since the restart is empty: nothing is dead until tokens are counted again.
        Assert.Equal(0, vq.RestartDeadCodes(z, new Random(2)));
    }

    [Fact]
    public void ForwardRestartsEveryRestartEverySteps()
    {
        var (vq, z) = DeadCodeSetup(VqMode.Gradient, restartEvery: 2);
        using var _ = vq; using var __ = z;
        var initial = vq.Codebook.Value.ToArray();
        vq.Forward(z);
        Assert.Equal(0, vq.LastRestartCount);
        Assert.Equal(initial, vq.Codebook.Value.ToArray());
        vq.Forward(z);
        Assert.Equal(4, vq.LastRestartCount);
        Assert.NotEqual(initial[8], vq.Codebook.Value.ToArray()[8]);
        vq.SetTraining(false);
        vq.Forward(z); vq.Forward(z);
        Assert.Equal(2, vq.TrainingSteps);
    }

    [Fact]
    public void KMeansInitReducesQuantizationErrorAgainstRandomInit()
    {
        int n = 512, d = 4, k = 8;
        var rng = new Random(21);
        var centres = Enumerable.Range(0, k * d).Select(_ => (float)(rng.NextDouble() * 6 - 3)).ToArray();
        var z = new float[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) z[i * d + j] = centres[(i % k) * d + j] + 0.2f * (float)(rng.NextDouble() - 0.5);
        using var tz = Cpu.FromArray(z, n, d);

        double Mse(VqOptions o)
        {
            using var vq = new VectorQuantizer(Cpu, o, new Random(4));
            vq.Forward(tz);
            return vq.Loss.ToArray()[0] / (1 + o.Beta);
        }
        double kmeans = Mse(new VqOptions { Codes = k, Dim = d, KMeansInit = true, RestartEvery = 0 });
        double random = Mse(new VqOptions { Codes = k, Dim = d, RestartEvery = 0 });
        // A stronger baseline than the default init: k random data rows.
        var rows = new float[k * d];
        var pick = new Random(4);
        for (int c = 0; c < k; c++) Array.Copy(z, pick.Next(n) * d, rows, c * d, d);
        double randomRows = KMeans.Error(z, n, d, rows, k);
        Assert.True(kmeans < random / 10, $"k-means {kmeans} vs random init {random}");
        Assert.True(kmeans < randomRows, $"k-means {kmeans} vs random data rows {randomRows}");
        Assert.True(kmeans < 0.01, $"k-means error {kmeans} on well separated blobs of width 0.2");
    }

    [Fact]
    public void UsageStatisticsGivePerplexityAndUsedFraction()
    {
        using var vq = new VectorQuantizer(Cpu, new VqOptions { Codes = 4, Dim = 1, RestartEvery = 0 });
        vq.Codebook.Value.CopyFrom([0f, 1f, 2f, 3f]);
        using var z = Cpu.FromArray([0f, 1f, 2f, 3f, 0f, 1f, 2f, 3f], 8, 1);
        vq.Forward(z);
        Assert.Equal([2f, 2f, 2f, 2f], vq.UsageCounts());
        Assert.Equal(4.0, vq.Perplexity(), 9);
        Assert.Equal(1.0, vq.UsedFraction());
        vq.ResetUsage();
        using var z2 = Cpu.FromArray([0.1f, -0.2f], 2, 1);
        vq.Forward(z2);
        Assert.Equal(1.0, vq.Perplexity(), 9);
        Assert.Equal(0.25, vq.UsedFraction());
    }
}
