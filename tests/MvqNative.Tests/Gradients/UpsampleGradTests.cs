// Gradient checks of upsample_nearest2x_forward / upsample_nearest2x_backward.
using MvqNative.Ops;
using Xunit;
using static MvqNative.Tests.Gradients.GemmOpsGradCheck;

namespace MvqNative.Tests.Gradients;

public class UpsampleGradTests
{
    [Theory]
    [InlineData(2, 3, 3, 5)]
    [InlineData(1, 1, 1, 1)]
    [InlineData(1, 2, 4, 1)]
    public void UpsampleBackwardMatchesCentralDifferences(int b, int c, int h, int w)
    {
        var rng = new Random(b * 100 + h * 10 + w);
        int[] xs = [b, c, h, w], ys = [b, c, 2 * h, 2 * w];
        var x = Rand(rng, Count(xs)); var g = Rand(rng, Count(ys));
        var num = Numeric(UpsampleOps.Forward, [x], [xs], ys, null, g, 0);
        double[][] init = [Enumerable.Repeat(double.NaN, x.Length).ToArray()];
        AssertClose("reference dx", num, RunRef(UpsampleOps.BackwardOp, [g], [ys], init, [xs], null)[0], 1e-9);
        // Float32 sums of four terms against float64.
        AssertClose("cpu dx", num, RunCpu(UpsampleOps.BackwardOp, [g], [ys], init, [xs], null)[0], 1e-6);
    }
}
