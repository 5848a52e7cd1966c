// The Activation layer: forward and backward agree with the float64 activation reference.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Layers;

public class ActivationLayerTests
{
    [Theory]
    [InlineData(ActivationKind.Relu)]
    [InlineData(ActivationKind.LeakyRelu)]
    [InlineData(ActivationKind.Silu)]
    [InlineData(ActivationKind.Sigmoid)]
    public void ForwardAndBackwardMatchReference(object kindArg)
    {
        var kind = (ActivationKind)kindArg;   // object: the enum is internal to the library
        var cpu = CpuBackend.Instance;
        var rng = new Random(11);
        var x = Enumerable.Range(0, 2 * 3 * 5).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var dy = Enumerable.Range(0, x.Length).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var layer = new Activation(cpu, kind, slope: 0.1f);
        using var tx = cpu.FromArray(x, 2, 3, 5);
        using var tdy = cpu.FromArray(dy, 2, 3, 5);
        var y = layer.Forward(tx);
        Assert.Equal([2, 3, 5], y.Shape);
        var yv = y.ToArray();
        var dx = layer.Backward(tdy).ToArray();
        var rc = new RefCall
        {
            In = [x.Select(v => (double)v).ToArray(), dy.Select(v => (double)v).ToArray()], InShapes = [[30], [30]],
            Out = [new double[30]], OutShapes = [[30]], Attrs = new ActivationAttrs(kind, 0.1f),
        };
        var fwd = new RefCall { In = [rc.In[0]], InShapes = [[30]], Out = [new double[30]], OutShapes = [[30]], Attrs = rc.Attrs };
        ActivationOps.Forward.Reference!(fwd);
        ActivationOps.BackwardOp.Reference!(rc);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal(fwd.Out[0][i], yv[i], 1e-6);
            Assert.Equal(rc.Out[0][i], dx[i], 1e-6);
        }
        Assert.Empty(layer.Parameters());
    }
}
