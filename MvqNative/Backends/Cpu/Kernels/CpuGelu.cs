// CPU GELU (tanh approximation), forward and backward, SIMD and parallel over chunks.
using System.Numerics;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// tanh(u) = 1 - 2 / (exp(2u) + 1): exp overflows to +inf for large u and gives exactly 1, underflows
/// to 0 for very negative u and gives -1, so no NaN for any finite x.
/// </summary>
internal static class CpuGelu
{
    private const float K0 = (float)GeluOps.K0, K1 = (float)GeluOps.K1;

    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    private static void Same(Tensor a, Tensor b, string op, string what)
    {
        if (a.Length != b.Length) throw new ArgumentException($"{op}: {what} has {b.Length} elements, expected {a.Length} ({b})");
    }

    private static Vector<float> Tanh(Vector<float> u) => Vector<float>.One - new Vector<float>(2f) / (Vector.Exp(u + u) + Vector<float>.One);
    private static float Tanh(float u) => 1f - 2f / (MathF.Exp(u + u) + 1f);

    public static void Forward(in OpCall call)
    {
        Same(call.In[0], call.Out[0], "gelu_forward", "y");
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        CpuParallel.For(call.In[0].Length, 16384, (s, e) =>
        {
            var xs = x.AsSpan(xo + s, e - s); var ys = y.AsSpan(yo + s, e - s);
            int i = 0, w = Vector<float>.Count;
            if (Vector.IsHardwareAccelerated)
            {
                var k0 = new Vector<float>(K0); var k1 = new Vector<float>(K1); var half = new Vector<float>(0.5f);
                for (; i <= xs.Length - w; i += w)
                {
                    var v = new Vector<float>(xs[i..]);
                    var t = Tanh(k0 * (v + k1 * v * v * v));
                    (half * v * (Vector<float>.One + t)).CopyTo(ys[i..]);
                }
            }
            for (; i < xs.Length; i++) { float v = xs[i]; ys[i] = 0.5f * v * (1f + Tanh(K0 * (v + K1 * v * v * v))); }
        });
    }

    public static void Backward(in OpCall call)
    {
        Same(call.In[0], call.In[1], "gelu_backward", "dy");
        Same(call.In[0], call.Out[0], "gelu_backward", "dx");
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var dy = D(call.In[1]); int dyo = (int)call.In[1].Offset;
        var dx = D(call.Out[0]); int dxo = (int)call.Out[0].Offset;
        CpuParallel.For(call.In[0].Length, 16384, (s, e) =>
        {
            var xs = x.AsSpan(xo + s, e - s); var ds = dy.AsSpan(dyo + s, e - s); var os = dx.AsSpan(dxo + s, e - s);
            int i = 0, w = Vector<float>.Count;
            if (Vector.IsHardwareAccelerated)
            {
                var k0 = new Vector<float>(K0); var k1 = new Vector<float>(K1); var k3 = new Vector<float>(3 * K1); var half = new Vector<float>(0.5f);
                for (; i <= xs.Length - w; i += w)
                {
                    var v = new Vector<float>(xs[i..]);
                    var v2 = v * v;
                    var t = Tanh(k0 * (v + k1 * v2 * v));
                    var d = half * (Vector<float>.One + t) + half * v * (Vector<float>.One - t * t) * k0 * (Vector<float>.One + k3 * v2);
                    (new Vector<float>(ds[i..]) * d).CopyTo(os[i..]);
                }
            }
            for (; i < xs.Length; i++)
            {
                float v = xs[i], t = Tanh(K0 * (v + K1 * v * v * v));
                os[i] = ds[i] * (0.5f * (1f + t) + 0.5f * v * (1f - t * t) * K0 * (1f + 3 * K1 * v * v));
            }
        });
    }
}
