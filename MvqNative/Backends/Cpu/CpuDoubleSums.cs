// Double-accumulated SIMD reductions over float spans, shared by the norm and loss kernels.
using System.Numerics;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Sums of float data accumulated in double (floats widened lane by lane). The order of
/// additions depends only on the data length and the vector width, never on threads.
/// </summary>
internal static class CpuDoubleSums
{
    /// <summary>sum x.</summary>
    public static double Sum(ReadOnlySpan<float> x)
    {
        int i = 0, w = Vector<float>.Count;
        var acc = Vector<double>.Zero;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - w; i += w)
            {
                Vector.Widen(new Vector<float>(x[i..]), out var lo, out var hi);
                acc += lo + hi;
            }
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    /// <summary>sum (x - m)^2.</summary>
    public static double SumSqDev(ReadOnlySpan<float> x, double m)
    {
        int i = 0, w = Vector<float>.Count;
        var acc = Vector<double>.Zero;
        var vm = new Vector<double>(m);
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - w; i += w)
            {
                Vector.Widen(new Vector<float>(x[i..]), out var lo, out var hi);
                lo -= vm; hi -= vm;
                acc += lo * lo + hi * hi;
            }
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) { double d = x[i] - m; s += d * d; }
        return s;
    }

    /// <summary>sum dy * (x - m).</summary>
    public static double DotDev(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, double m)
    {
        int i = 0, w = Vector<float>.Count;
        var acc = Vector<double>.Zero;
        var vm = new Vector<double>(m);
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - w; i += w)
            {
                Vector.Widen(new Vector<float>(x[i..]), out var xlo, out var xhi);
                Vector.Widen(new Vector<float>(dy[i..]), out var glo, out var ghi);
                acc += glo * (xlo - vm) + ghi * (xhi - vm);
            }
        double s = Vector.Sum(acc);
        for (; i < x.Length; i++) s += (double)dy[i] * (x[i] - m);
        return s;
    }

    /// <summary>sum (a - b)^2, the difference taken in double.</summary>
    public static double SumSqDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0, w = Vector<float>.Count;
        var acc = Vector<double>.Zero;
        if (Vector.IsHardwareAccelerated)
            for (; i <= a.Length - w; i += w)
            {
                Vector.Widen(new Vector<float>(a[i..]), out var alo, out var ahi);
                Vector.Widen(new Vector<float>(b[i..]), out var blo, out var bhi);
                alo -= blo; ahi -= bhi;
                acc += alo * alo + ahi * ahi;
            }
        double s = Vector.Sum(acc);
        for (; i < a.Length; i++) { double d = (double)a[i] - b[i]; s += d * d; }
        return s;
    }

    /// <summary>sum |a - b|, the difference taken in double.</summary>
    public static double SumAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0, w = Vector<float>.Count;
        var acc = Vector<double>.Zero;
        if (Vector.IsHardwareAccelerated)
            for (; i <= a.Length - w; i += w)
            {
                Vector.Widen(new Vector<float>(a[i..]), out var alo, out var ahi);
                Vector.Widen(new Vector<float>(b[i..]), out var blo, out var bhi);
                acc += Vector.Abs(alo - blo) + Vector.Abs(ahi - bhi);
            }
        double s = Vector.Sum(acc);
        for (; i < a.Length; i++) s += Math.Abs((double)a[i] - b[i]);
        return s;
    }

    /// <summary>Elements per block of <see cref="Blocked"/>: fixed, so results do not depend on the thread count.</summary>
    public const int BlockSize = 8192;

    /// <summary>
    /// Runs <paramref name="block"/>(start, end) over fixed-size blocks of [0, n) in parallel and
    /// adds the blocks' double results in block order: bit-reproducible for any thread count.
    /// </summary>
    public static double Blocked(int n, Func<int, int, double> block)
    {
        int nb = (n + BlockSize - 1) / BlockSize;
        if (nb <= 1) return n <= 0 ? 0 : block(0, n);
        var part = System.Buffers.ArrayPool<double>.Shared.Rent(nb);
        try
        {
            CpuParallel.For(nb, 4, (s, e) =>
            {
                for (int k = s; k < e; k++) part[k] = block(k * BlockSize, Math.Min(n, (k + 1) * BlockSize));
            });
            double total = 0;
            for (int k = 0; k < nb; k++) total += part[k];
            return total;
        }
        finally { System.Buffers.ArrayPool<double>.Shared.Return(part); }
    }
}
