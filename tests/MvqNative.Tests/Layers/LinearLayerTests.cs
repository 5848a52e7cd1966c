// Linear module: leading dimensions kept, forward against a direct loop, backward shapes and accumulation.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using Xunit;

namespace MvqNative.Tests.Layers;

public class LinearLayerTests
{
    private static float[] Rand(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

    [Fact]
    public void Rank3InputKeepsLeadingDimsAndMatchesDirectLoop()
    {
        var be = new CpuBackend();
        using var lin = new Linear(be, 7, 4, new Random(2));
        var rng = new Random(8);
        var xa = Rand(rng, 2 * 3 * 7);
        using var x = be.FromArray(xa, 2, 3, 7);
        var y = lin.Forward(x);
        Assert.Equal([2, 3, 4], y.Shape);
        var w = lin.Weight.Value.ToArray(); var b = lin.Bias.Value.ToArray(); var got = y.ToArray();
        for (int r = 0; r < 6; r++)
            for (int o = 0; o < 4; o++)
            {
                double acc = b[o];
                for (int i = 0; i < 7; i++) acc += (double)xa[r * 7 + i] * w[o * 7 + i];
                Assert.True(Math.Abs(got[r * 4 + o] - acc) <= 1e-5, $"y[{r},{o}] = {got[r * 4 + o]}, want {acc}");
            }

        using var dy = be.FromArray(Rand(rng, 24), 2, 3, 4);
        var dx = lin.Backward(dy);
        Assert.Equal([2, 3, 7], dx.Shape);
        var dya = dy.ToArray(); var dxa = dx.ToArray();
        for (int r = 0; r < 6; r++)
            for (int i = 0; i < 7; i++)
            {
                double acc = 0;
                for (int o = 0; o < 4; o++) acc += (double)dya[r * 4 + o] * w[o * 7 + i];
                Assert.True(Math.Abs(dxa[r * 7 + i] - acc) <= 1e-5);
            }
        var gb = lin.Bias.Grad.ToArray();
        for (int o = 0; o < 4; o++) Assert.Equal(Enumerable.Range(0, 6).Sum(r => (double)dya[r * 4 + o]), gb[o], 1e-5);
    }

    [Fact]
    public void InitBoundNamesAndDecay()
    {
        var be = new CpuBackend();
        using var lin = new Linear(be, 16, 3, new Random(1));
        float bound = 0.25f;
        Assert.All(lin.Weight.Value.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.False(lin.Bias.Decay);
        Assert.Equal(["weight", "bias"], lin.Parameters().Select(p => p.Name));
        Assert.Equal(16 * 3 + 3, lin.ParameterCount);
    }

    [Fact]
    public void RejectsWrongLastDimension()
    {
        var be = new CpuBackend();
        using var lin = new Linear(be, 5, 2);
        using var x = be.Zeros(3, 4);
        Assert.Throws<ArgumentException>(() => lin.Forward(x));
    }
}
