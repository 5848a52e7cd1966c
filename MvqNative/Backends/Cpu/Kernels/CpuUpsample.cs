// CPU nearest 2x upsampling forward and backward, parallel over image planes.
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

/// <summary>Nearest 2x upsampling on the CPU; one (b, c) plane per work item.</summary>
internal static class CpuUpsample
{
    public static void Forward(in OpCall c)
    {
        var (planes, h, w) = UpsampleOps.Check(c.In[0].Shape, c.Out[0].Shape);
        var x = ((CpuBuffer)c.In[0].Buffer).Data; int xo = (int)c.In[0].Offset;
        var y = ((CpuBuffer)c.Out[0].Buffer).Data; int yo = (int)c.Out[0].Offset;
        int w2 = 2 * w;
        CpuParallel.For(planes, Math.Max(1, 8192 / Math.Max(1, h * w)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
                for (int i = 0; i < h; i++)
                {
                    var src = x.AsSpan(xo + (p * h + i) * w, w);
                    var dst = y.AsSpan(yo + (p * 2 * h + 2 * i) * w2, w2);
                    for (int j = 0; j < w; j++) { float v = src[j]; dst[2 * j] = v; dst[2 * j + 1] = v; }
                    // The odd output row repeats the even one.
                    dst.CopyTo(y.AsSpan(yo + (p * 2 * h + 2 * i + 1) * w2, w2));
                }
        });
    }

    public static void Backward(in OpCall c)
    {
        var (planes, h, w) = UpsampleOps.Check(c.Out[0].Shape, c.In[0].Shape);
        var dy = ((CpuBuffer)c.In[0].Buffer).Data; int dyo = (int)c.In[0].Offset;
        var dx = ((CpuBuffer)c.Out[0].Buffer).Data; int dxo = (int)c.Out[0].Offset;
        int w2 = 2 * w;
        CpuParallel.For(planes, Math.Max(1, 8192 / Math.Max(1, h * w)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
                for (int i = 0; i < h; i++)
                {
                    var r0 = dy.AsSpan(dyo + (p * 2 * h + 2 * i) * w2, w2);
                    var r1 = dy.AsSpan(dyo + (p * 2 * h + 2 * i + 1) * w2, w2);
                    var dst = dx.AsSpan(dxo + (p * h + i) * w, w);
                    for (int j = 0; j < w; j++) dst[j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
                }
        });
    }
}
