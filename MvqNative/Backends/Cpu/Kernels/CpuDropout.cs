// CPU dropout: the same counter-based keep mask as native/kernels/dropout.cu, parallel over chunks.
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

internal static class CpuDropout
{
    /// <summary>32-bit integer finaliser (xor-shift / multiply rounds), as mvq_dropout_mix in dropout.cu.</summary>
    internal static uint Mix(uint h)
    {
        h ^= h >> 16; h *= 0x7feb352du;
        h ^= h >> 15; h *= 0x846ca68bu;
        h ^= h >> 16;
        return h;
    }

    internal static bool Keep(uint seed, uint i, uint threshold) => (Mix(Mix(i) ^ seed) >> 8) >= threshold;

    public static void Apply(in OpCall call)
    {
        var a = call.A<DropoutAttrs>();
        uint seed = a.Seed, threshold = a.Threshold;
        float scale = a.Scale;
        var x = ((CpuBuffer)call.In[0].Buffer).Data; int xo = (int)call.In[0].Offset;
        var y = ((CpuBuffer)call.Out[0].Buffer).Data; int yo = (int)call.Out[0].Offset;
        CpuParallel.For(call.In[0].Length, 16384, (s, e) =>
        {
            for (int i = s; i < e; i++) y[yo + i] = Keep(seed, (uint)i, threshold) ? x[xo + i] * scale : 0f;
        });
    }
}
