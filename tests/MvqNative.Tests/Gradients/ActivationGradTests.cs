// Central-difference checks of activation_backward against activation_forward's float64 reference.
using MvqNative.Ops;
using Xunit;
using static MvqNative.Tests.Gradients.GemmOpsGradCheck;

namespace MvqNative.Tests.Gradients;

public class ActivationGradTests
{
    [Theory]
    [InlineData(ActivationKind.Relu)]
    [InlineData(ActivationKind.LeakyRelu)]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.Sigmoid)]
    public void ActivationBackwardMatchesCentralDifferences(object kindArg)
    {
        var kind = (ActivationKind)kindArg;   // object: the enum is internal to the library
        var rng = new Random((int)kind + 7);
        int[] shape = [3, 5, 7];
        var x = Rand(rng, Count(shape));
        // Keep inputs 0.05 away from the relu kink so the differences see one side only.
        for (int i = 0; i < x.Length; i++) if (Math.Abs(x[i]) < 0.05) x[i] = x[i] < 0 ? -0.05 - 0.25 : 0.05 + 0.25;
        var g = Rand(rng, x.Length);
        var attrs = new ActivationAttrs(kind, 0.2f);
        var num = Numeric(ActivationOps.Forward, [x], [shape], shape, attrs, g, 0);
        double[][] init = [Enumerable.Repeat(double.NaN, x.Length).ToArray()];
        AssertClose("reference dx", num, RunRef(ActivationOps.BackwardOp, [x, g], [shape, shape], init, [shape], attrs)[0], 1e-7);
        // Float32 evaluation of f'(x) against float64 differences.
        AssertClose("cpu dx", num, RunCpu(ActivationOps.BackwardOp, [x, g], [shape, shape], init, [shape], attrs)[0], 1e-5);
    }
}
