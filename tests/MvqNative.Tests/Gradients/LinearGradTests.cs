// Gradient checks and accumulation tests of linear_forward / linear_backward.
using MvqNative.Ops;
using Xunit;
using static MvqNative.Tests.Gradients.GemmOpsGradCheck;

namespace MvqNative.Tests.Gradients;

public class LinearGradTests
{
    [Theory]
    [InlineData(5, 7, 3)]
    [InlineData(1, 1, 1)]
    [InlineData(4, 9, 6)]
    [InlineData(13, 2, 1)]
    public void LinearBackwardMatchesCentralDifferences(int n, int fin, int fout)
        => CheckAffine(LinearOps.Forward, LinearOps.BackwardOp, [n, fin], [fout, fin], [n, fout], null, seed: 100 + n * 7 + fin);

    [Fact]
    public void LinearBackwardAccumulatesDwDbAndWritesDx()
    {
        var rng = new Random(3);
        int n = 9, fin = 6, fout = 5;
        var x = Rand(rng, n * fin); var w = Rand(rng, fout * fin); var dy = Rand(rng, n * fout);
        var dw0 = Rand(rng, fout * fin); var db0 = Rand(rng, fout);
        int[][] ins = [[n, fin], [fout, fin], [n, fout]], outs = [[n, fin], [fout, fin], [fout]];
        var fresh = RunCpu(LinearOps.BackwardOp, [x, w, dy], ins, [new double[n * fin], new double[fout * fin], new double[fout]], outs, null);
        var onto = RunCpu(LinearOps.BackwardOp, [x, w, dy], ins, [Rand(rng, n * fin), dw0, db0], outs, null);
        Assert.Equal(fresh[0], onto[0]);
        // The GEMM accumulates with beta = 1, so compare to within float rounding of the sum.
        AssertClose("dw", dw0.Zip(fresh[1], (a, b) => a + b).ToArray(), onto[1], 1e-6);
        for (int i = 0; i < fout; i++) Assert.Equal((float)((float)db0[i] + (float)fresh[2][i]), (float)onto[2][i]);
    }
}
