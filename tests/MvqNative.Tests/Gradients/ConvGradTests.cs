// Gradient checks and accumulation/determinism tests of conv2d_forward / conv2d_backward.
using MvqNative.Ops;
using Xunit;
using static MvqNative.Tests.Gradients.GemmOpsGradCheck;

namespace MvqNative.Tests.Gradients;

public class ConvGradTests
{
    [Theory]
    [InlineData(2, 3, 5, 7, 2, 3, 1, 1)]
    [InlineData(2, 2, 7, 6, 3, 3, 2, 1)]
    [InlineData(1, 3, 6, 5, 2, 3, 1, 0)]
    [InlineData(2, 2, 7, 7, 3, 3, 2, 0)]
    [InlineData(3, 2, 5, 4, 3, 1, 1, 0)]  // pointwise path (no im2col)
    [InlineData(1, 2, 8, 6, 2, 4, 2, 1)]
    [InlineData(1, 1, 1, 1, 1, 1, 1, 0)]  // size 1
    [InlineData(1, 2, 2, 3, 2, 3, 1, 1)]  // kernel as large as the padded input
    public void Conv2dBackwardMatchesCentralDifferences(int b, int cin, int h, int w, int cout, int k, int s, int p)
    {
        var a = new Conv2dAttrs(s, p);
        CheckAffine(ConvOps.Forward, ConvOps.BackwardOp, [b, cin, h, w], [cout, cin, k, k], [b, cout, a.OutSize(h, k), a.OutSize(w, k)], a, seed: 17 + b * 31 + k);
    }

    [Theory]
    [InlineData(3, 3, 1)]
    [InlineData(1, 1, 0)]
    public void Conv2dBackwardAccumulatesDwDbAndWritesDx(int k, int s, int p)
    {
        var rng = new Random(5);
        var a = new Conv2dAttrs(s, p);
        int[] xs = [5, 3, 6, 7], ws = [4, 3, k, k], ys = [5, 4, a.OutSize(6, k), a.OutSize(7, k)], bs = [4];
        var x = Rand(rng, Count(xs)); var w = Rand(rng, Count(ws)); var dy = Rand(rng, Count(ys));
        var dw0 = Rand(rng, Count(ws)); var db0 = Rand(rng, 4);

        var fresh = RunCpu(ConvOps.BackwardOp, [x, w, dy], [xs, ws, ys], [new double[x.Length], new double[w.Length], new double[4]], [xs, ws, bs], a);
        var onto = RunCpu(ConvOps.BackwardOp, [x, w, dy], [xs, ws, ys], [Rand(rng, x.Length), dw0, db0], [xs, ws, bs], a);

        // dx is written: a different starting value changes nothing.
        Assert.Equal(fresh[0], onto[0]);
        // dw, db accumulate: the result is the float32 sum of the old value and the fresh gradient.
        for (int i = 0; i < w.Length; i++) Assert.Equal((float)((float)dw0[i] + (float)fresh[1][i]), (float)onto[1][i]);
        for (int i = 0; i < 4; i++) Assert.Equal((float)((float)db0[i] + (float)fresh[2][i]), (float)onto[2][i]);
        Assert.Contains(fresh[1], v => v != 0);
    }

    [Fact]
    public void Conv2dBackwardIsBitReproducible()
    {
        var rng = new Random(9);
        var a = new Conv2dAttrs(2, 1);
        int[] xs = [23, 4, 9, 8], ws = [6, 4, 3, 3], ys = [23, 6, a.OutSize(9, 3), a.OutSize(8, 3)], bs = [6];
        var x = Rand(rng, Count(xs)); var w = Rand(rng, Count(ws)); var dy = Rand(rng, Count(ys));
        double[][] init = [new double[x.Length], new double[w.Length], new double[6]];
        var first = RunCpu(ConvOps.BackwardOp, [x, w, dy], [xs, ws, ys], init, [xs, ws, bs], a);
        for (int run = 0; run < 3; run++)
        {
            var again = RunCpu(ConvOps.BackwardOp, [x, w, dy], [xs, ws, ys], init, [xs, ws, bs], a);
            for (int i = 0; i < 3; i++) Assert.Equal(first[i], again[i]);
        }
    }

    [Fact]
    public void Conv2dRejectsMismatchedShapes()
    {
        var rng = new Random(1);
        var a = new Conv2dAttrs(1, 0);
        var ex = Assert.Throws<ArgumentException>(() => RunCpu(ConvOps.Forward, [Rand(rng, 2 * 3 * 4 * 4), Rand(rng, 5 * 2 * 3 * 3), Rand(rng, 5)],
            [[2, 3, 4, 4], [5, 2, 3, 3], [5]], [new double[2 * 5 * 2 * 2]], [[2, 5, 2, 2]], a));
        Assert.Contains("input channels", ex.Message);
    }
}
