// Conv2d module: forward against a direct-loop convolution, backward against the op, init, names.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using Xunit;

namespace MvqNative.Tests.Layers;

public class ConvLayerTests
{
    private static float[] Rand(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();

    /// <summary>y[n,o,i,j] = b[o] + sum w[o,c,u,v] x[n,c,iS-P+u,jS-P+v], written out with no im2col and no GEMM.</summary>
    private static double[] DirectConv(float[] x, float[] w, float[] b, int nb, int cin, int h, int wd, int cout, int k, int s, int p, out int ho, out int wo)
    {
        ho = (h + 2 * p - k) / s + 1; wo = (wd + 2 * p - k) / s + 1;
        var y = new double[nb * cout * ho * wo];
        for (int n = 0; n < nb; n++)
            for (int o = 0; o < cout; o++)
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++)
                    {
                        double acc = b[o];
                        for (int c = 0; c < cin; c++)
                            for (int u = 0; u < k; u++)
                                for (int v = 0; v < k; v++)
                                {
                                    int ih = i * s - p + u, iw = j * s - p + v;
                                    if (ih >= 0 && ih < h && iw >= 0 && iw < wd)
                                        acc += (double)w[((o * cin + c) * k + u) * k + v] * x[((n * cin + c) * h + ih) * wd + iw];
                                }
                        y[((n * cout + o) * ho + i) * wo + j] = acc;
                    }
        return y;
    }

    [Theory]
    [InlineData(3, 5, 3, 2, 1, 9, 8)]
    [InlineData(4, 2, 3, 1, 1, 7, 5)]
    [InlineData(3, 6, 1, 1, 0, 5, 3)]
    [InlineData(2, 3, 4, 2, 1, 8, 6)]
    public void ForwardEqualsDirectLoopConvolution(int cin, int cout, int k, int stride, int pad, int h, int w)
    {
        var be = new CpuBackend();
        using var conv = new Conv2d(be, cin, cout, k, stride, pad, new Random(42));
        var rng = new Random(7);
        var xa = Rand(rng, 2 * cin * h * w);
        using var x = be.FromArray(xa, 2, cin, h, w);
        var y = conv.Forward(x);
        var want = DirectConv(xa, conv.Weight.Value.ToArray(), conv.Bias.Value.ToArray(), 2, cin, h, w, cout, k, stride, pad, out int ho, out int wo);
        Assert.Equal([2, cout, ho, wo], y.Shape);
        var got = y.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5 * (1 + Math.Abs(want[i])), $"y[{i}] = {got[i]}, direct loop {want[i]}");
    }

    [Fact]
    public void InitIsPyTorchUniformAndNamesAndDecayAreSet()
    {
        var be = new CpuBackend();
        using var conv = new Conv2d(be, 4, 6, 3, rng: new Random(1));
        var ps = conv.Parameters().ToList();
        Assert.Equal(["weight", "bias"], ps.Select(p => p.Name));
        Assert.True(ps[0].Decay);
        Assert.False(ps[1].Decay);
        Assert.Equal([6, 4, 3, 3], ps[0].Value.Shape);
        float bound = 1f / MathF.Sqrt(4 * 9);
        var wv = ps[0].Value.ToArray();
        Assert.All(wv, v => Assert.InRange(v, -bound, bound));
        Assert.All(ps[1].Value.ToArray(), v => Assert.InRange(v, -bound, bound));
        // Spread over the range, not a constant.
        Assert.True(wv.Max() > bound / 2 && wv.Min() < -bound / 2);
        // Same seed, same weights.
        using var again = new Conv2d(be, 4, 6, 3, rng: new Random(1));
        Assert.Equal(wv, again.Weight.Value.ToArray());
    }

    [Fact]
    public void BackwardWritesDxAndAccumulatesParameterGradients()
    {
        var be = new CpuBackend();
        var conv = new Conv2d(be, 2, 3, 3, 1, 1, new Random(3));
        var rng = new Random(4);
        var x = be.FromArray(Rand(rng, 2 * 2 * 5 * 4), 2, 2, 5, 4);
        var dy = be.FromArray(Rand(rng, 2 * 3 * 5 * 4), 2, 3, 5, 4);
        conv.Forward(x);
        var dx1 = conv.Backward(dy).ToArray();
        var gw1 = conv.Weight.Grad.ToArray();
        var gb1 = conv.Bias.Grad.ToArray();
        Assert.Contains(gw1, v => v != 0);
        conv.Forward(x);
        var dx2 = conv.Backward(dy).ToArray();
        Assert.Equal(dx1, dx2);
        Assert.Equal(gw1.Select(v => v + v), conv.Weight.Grad.ToArray());
        Assert.Equal(gb1.Select(v => v + v), conv.Bias.Grad.ToArray());

        conv.Dispose(); x.Dispose(); dy.Dispose();
        Assert.Equal(0, be.LiveBuffers);
    }

    [Fact]
    public void ForwardRejectsWrongChannelCount()
    {
        var be = new CpuBackend();
        using var conv = new Conv2d(be, 3, 4, 3);
        using var x = be.Zeros(1, 2, 5, 5);
        Assert.Throws<ArgumentException>(() => conv.Forward(x));
    }
}
