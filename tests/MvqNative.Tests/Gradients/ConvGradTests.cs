// Determinism and shape errors of conv2d_forward / conv2d_backward (the central-difference check and the
// =/+= semantics of the backward are registry-driven: GradientCheckTests).
using MvqNative.Ops;
using Xunit;
using static MvqNative.Tests.Gradients.OpRuns;

namespace MvqNative.Tests.Gradients;

public class ConvGradTests
{
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
