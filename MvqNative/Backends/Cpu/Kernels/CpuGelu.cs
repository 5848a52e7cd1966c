// CPU GELU (tanh approximation), forward and backward, SIMD and parallel over chunks.
using System.Runtime.Intrinsics;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// tanh(u) = 1 - 2 / (exp(2u) + 1) with CpuMath.Exp (clamped): about 3.4e38 for large u gives exactly 1, about 1e-38
/// for very negative u gives -1, so no NaN for any finite x (the scalar tail uses MathF.Exp: inf gives 1, 0 gives -1).
/// </summary>
internal static class CpuGelu
{
    private const float K0 = (float)GeluOps.K0, K1 = (float)GeluOps.K1;

    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    private static Vector256<float> Tanh(Vector256<float> u) => Vector256<float>.One - Vector256.Create(2f) / (CpuMath.Exp(u + u) + Vector256<float>.One);
    private static float Tanh(float u) => 1f - 2f / (MathF.Exp(u + u) + 1f);

    public static void Forward(in OpCall call)
    {
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        CpuParallel.For(call.In[0].Length, 16384, (s, e) =>
        {
            var xs = x.AsSpan(xo + s, e - s); var ys = y.AsSpan(yo + s, e - s);
            int i = 0, w = Vector256<float>.Count;
            {
                var k0 = Vector256.Create(K0); var k1 = Vector256.Create(K1); var half = Vector256.Create(0.5f);
                for (; i <= xs.Length - w; i += w)
                {
                    var v = Vector256.Create(xs.Slice(i, w));
                    var t = Tanh(k0 * (v + k1 * v * v * v));
                    (half * v * (Vector256<float>.One + t)).CopyTo(ys.Slice(i, w));
                }
            }
            for (; i < xs.Length; i++) { float v = xs[i]; ys[i] = 0.5f * v * (1f + Tanh(K0 * (v + K1 * v * v * v))); }
        });
    }

    public static void Backward(in OpCall call)
    {
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var dy = D(call.In[1]); int dyo = (int)call.In[1].Offset;
        var dx = D(call.Out[0]); int dxo = (int)call.Out[0].Offset;
        CpuParallel.For(call.In[0].Length, 16384, (s, e) =>
        {
            var xs = x.AsSpan(xo + s, e - s); var ds = dy.AsSpan(dyo + s, e - s); var os = dx.AsSpan(dxo + s, e - s);
            int i = 0, w = Vector256<float>.Count;
            {
                var k0 = Vector256.Create(K0); var k1 = Vector256.Create(K1); var k3 = Vector256.Create(3 * K1); var half = Vector256.Create(0.5f);
                var one = Vector256<float>.One;
                for (; i <= xs.Length - w; i += w)
                {
                    var v = Vector256.Create(xs.Slice(i, w));
                    var v2 = v * v;
                    var t = Tanh(k0 * (v + k1 * v2 * v));
                    var d = half * (one + t) + half * v * (one - t * t) * k0 * (one + k3 * v2);
                    (Vector256.Create(ds.Slice(i, w)) * d).CopyTo(os.Slice(i, w));
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
