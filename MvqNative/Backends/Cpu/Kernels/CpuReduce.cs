// CPU reductions with double accumulation and a fixed chunking, so results do not depend
// on the thread count: sum_squares, and the sum of squared differences used by vq_loss.
using System.Numerics;
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

internal static class CpuReduce
{
    /// <summary>Elements per partial sum; fixed so that the summation order never depends on the thread count.</summary>
    private const int Chunk = 16384;

    /// <summary>sum_i (a_i - b_i)^2 in double over n elements, or sum_i a_i^2 when <paramref name="b"/> is null.</summary>
    public static double SumSquaredDiff(float[] a, int ao, float[]? b, int bo, int n)
    {
        if (n <= 0) return 0;
        int chunks = (n + Chunk - 1) / Chunk;
        if (chunks == 1) return Partial(a, ao, b, bo, n);
        var partial = new double[chunks];
        CpuParallel.For(chunks, 1, (s, e) =>
        {
            for (int ci = s; ci < e; ci++)
            {
                int start = ci * Chunk, len = Math.Min(Chunk, n - start);
                partial[ci] = Partial(a, ao + start, b, bo + start, len);
            }
        });
        double sum = 0;
        foreach (var p in partial) sum += p;
        return sum;
    }

    private static double Partial(float[] a, int ao, float[]? b, int bo, int n)
    {
        var x = a.AsSpan(ao, n);
        var y = b is null ? default : b.AsSpan(bo, n);
        int i = 0;
        double s = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var acc = Vector<double>.Zero;
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                if (b is not null) v -= new Vector<float>(y[i..]);
                // Widen to double before squaring: the accumulation is in double throughout.
                Vector.Widen(v, out var lo, out var hi);
                acc += lo * lo + hi * hi;
            }
            s = Vector.Sum(acc);
        }
        for (; i < n; i++)
        {
            double d = b is null ? x[i] : (double)x[i] - y[i];
            s += d * d;
        }
        return s;
    }

    /// <summary>sum_squares: s[0] += sum x^2 (double accumulation, rounded once to float).</summary>
    public static void SumSquares(in OpCall c)
    {
        var x = c.In[0]; var s = c.Out[0];
        var xa = ((CpuBuffer)x.Buffer).Data;
        var sa = ((CpuBuffer)s.Buffer).Data;
        double sum = SumSquaredDiff(xa, (int)x.Offset, null, 0, x.Length);
        sa[s.Offset] = (float)(sa[s.Offset] + sum);
    }
}
