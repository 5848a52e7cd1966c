// Vectorised exp and row reductions for the CPU kernels of the prior's ops (softmax rows, GELU).
using System.Runtime.Intrinsics;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// exp over Vector256 lanes: n = floor(x log2 e + 1/2), r = x - n ln 2 (ln 2 split in two constants,
/// Cody-Waite), e^r by a degree-6 polynomial on [-ln2/2, ln2/2] (the Cephes expf coefficients), times
/// 2^n built in the exponent bits. Relative error about 1e-7 (float rounding). Inputs are clamped to
/// [-87.3, 88.7]: large ones give about 3.4e38 instead of +inf, very negative ones about 1e-38
/// instead of 0, which every caller here (softmax weights, tanh via exp) tolerates.
/// Measured on the development machine, the library's float exp (TensorPrimitives.Exp, Vector.Exp)
/// was slower than a scalar MathF.Exp loop; this one is several times faster than both.
/// </summary>
internal static class CpuMath
{
    private const int W = 8;

    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-87.3f)), Vector256.Create(88.7f));
        var fx = Vector256.Floor(Vector256.FusedMultiplyAdd(x, Vector256.Create(1.44269504088896341f), Vector256.Create(0.5f)));
        var r = Vector256.FusedMultiplyAdd(fx, Vector256.Create(-0.693359375f), x);
        r = Vector256.FusedMultiplyAdd(fx, Vector256.Create(2.12194440e-4f), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        var y = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var pow2n = Vector256.ShiftLeft(Vector256.ConvertToInt32(fx) + Vector256.Create(127), 23).AsSingle();
        return y * pow2n;
    }

    /// <summary>Max of a non-empty row.</summary>
    public static float Max(ReadOnlySpan<float> x)
    {
        int i = 0;
        float m = float.NegativeInfinity;
        if (x.Length >= W)
        {
            var vm = Vector256.Create(float.NegativeInfinity);
            for (; i <= x.Length - W; i += W) vm = Vector256.Max(vm, Vector256.Create(x.Slice(i, W)));
            for (int k = 0; k < W; k++) m = Math.Max(m, vm[k]);
        }
        for (; i < x.Length; i++) m = Math.Max(m, x[i]);
        return m;
    }

    /// <summary>y = exp(x - shift) elementwise (y may be x); returns the sum of y.</summary>
    public static float ExpShiftSum(ReadOnlySpan<float> x, float shift, Span<float> y)
    {
        int i = 0;
        float s = 0;
        if (x.Length >= W)
        {
            var vs = Vector256.Create(shift);
            var acc = Vector256<float>.Zero;
            for (; i <= x.Length - W; i += W)
            {
                var e = Exp(Vector256.Create(x.Slice(i, W)) - vs);
                e.CopyTo(y.Slice(i, W));
                acc += e;
            }
            s = Vector256.Sum(acc);
        }
        for (; i < x.Length; i++) { float e = MathF.Exp(x[i] - shift); y[i] = e; s += e; }
        return s;
    }

    /// <summary>y = scale * exp(x - shift) elementwise (y may be x).</summary>
    public static void ExpShiftScale(ReadOnlySpan<float> x, float shift, float scale, Span<float> y)
    {
        int i = 0;
        var vs = Vector256.Create(shift); var vc = Vector256.Create(scale);
        for (; i <= x.Length - W; i += W) (Exp(Vector256.Create(x.Slice(i, W)) - vs) * vc).CopyTo(y.Slice(i, W));
        for (; i < x.Length; i++) y[i] = scale * MathF.Exp(x[i] - shift);
    }
}
