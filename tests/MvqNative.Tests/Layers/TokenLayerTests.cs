// ToTokens / FromTokens / Flatten / Unflatten / Upsample2x modules: layouts, inverses, views, backward.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using Xunit;

namespace MvqNative.Tests.Layers;

public class TokenLayerTests
{
    private static float[] Iota(int n) => Enumerable.Range(0, n).Select(i => (float)i).ToArray();

    [Fact]
    public void ToTokensPutsEachPixelsChannelsInOneRow()
    {
        var be = new CpuBackend();
        using var tt = new ToTokens(be);
        int b = 2, c = 3, h = 5, w = 7;
        var xa = Iota(b * c * h * w);
        using var x = be.FromArray(xa, b, c, h, w);
        var t = tt.Forward(x);
        Assert.Equal([b * h * w, c], t.Shape);
        Assert.Equal((h, w), (tt.Height, tt.Width));
        var ta = t.ToArray();
        for (int n = 0; n < b; n++)
            for (int k = 0; k < c; k++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++)
                        Assert.Equal(xa[((n * c + k) * h + i) * w + j], ta[((n * h + i) * w + j) * c + k]);
    }

    [Fact]
    public void FromTokensInvertsToTokensForwardAndBackward()
    {
        var be = new CpuBackend();
        using var tt = new ToTokens(be);
        using var ft = new FromTokens(be, 6, 11);
        var xa = Iota(3 * 37 * 6 * 11);
        using var x = be.FromArray(xa, 3, 37, 6, 11);
        var back = ft.Forward(tt.Forward(x));
        Assert.Equal(x.Shape, back.Shape);
        Assert.Equal(xa, back.ToArray());

        // Backward of each is the other's forward.
        var dt = ft.Backward(back);
        Assert.Equal(tt.Forward(x).ToArray(), dt.ToArray());
        Assert.Equal(xa, tt.Backward(dt).ToArray());
    }

    [Fact]
    public void FromTokensRejectsRowsNotAMultipleOfHW()
    {
        var be = new CpuBackend();
        using var ft = new FromTokens(be, 2, 3);
        using var t = be.Zeros(7, 4);
        Assert.Throws<ArgumentException>(() => ft.Forward(t));
    }

    [Fact]
    public void FlattenAndUnflattenAreViewsAndInverse()
    {
        var be = new CpuBackend();
        using var fl = new Flatten(be);
        using var uf = new Unflatten(be, 3, 4, 5);
        using var x = be.FromArray(Iota(2 * 60), 2, 3, 4, 5);
        long live = be.LiveBuffers;
        var f = fl.Forward(x);
        Assert.Equal([2, 60], f.Shape);
        Assert.Same(x.Buffer, f.Buffer);
        var u = uf.Forward(f);
        Assert.Equal([2, 3, 4, 5], u.Shape);
        Assert.Equal([2, 60], uf.Backward(u).Shape);
        Assert.Equal([2, 3, 4, 5], fl.Backward(f).Shape);
        Assert.Equal(live, be.LiveBuffers);
        using var wrong = be.Zeros(2, 59);
        Assert.Throws<ArgumentException>(() => uf.Forward(wrong));
    }

    [Fact]
    public void Upsample2xRepeatsPixelsAndSumsBlocksInBackward()
    {
        var be = new CpuBackend();
        using var up = new Upsample2x(be);
        using var x = be.FromArray(Iota(2 * 3 * 5), 1, 2, 3, 5);
        var y = up.Forward(x);
        Assert.Equal([1, 2, 6, 10], y.Shape);
        var ya = y.ToArray();
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 10; j++)
                    Assert.Equal((c * 3 + i / 2) * 5 + j / 2, ya[(c * 6 + i) * 10 + j]);
        var dx = up.Backward(y);
        Assert.Equal([1, 2, 3, 5], dx.Shape);
        Assert.Equal(Iota(30).Select(v => 4 * v), dx.ToArray());
    }
}
