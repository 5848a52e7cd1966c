using MvqNative.Tensors;

namespace MvqNative.Conformance;

/// <summary>
/// One tensor of a conformance case: shape, type, and the range its random contents are
/// drawn from (floats uniform in [Lo, Hi); ints uniform in [Lo, Hi) truncated).
/// </summary>
internal sealed record TensorSpec(int[] Shape, DType DType = DType.F32, float Lo = -1f, float Hi = 1f)
{
    public static TensorSpec F(params int[] shape) => new(shape);
    public static TensorSpec I(int lo, int hi, params int[] shape) => new(shape, DType.I32, lo, hi);
    /// <summary>An output that the op overwrites; its random initial value is ignored.</summary>
    public static TensorSpec Out(params int[] shape) => new(shape);
}

/// <summary>
/// A conformance case of one op: random inputs and initial outputs from <see cref="In"/> and
/// <see cref="Out"/> (outputs start random so that accumulating (+=) ops are checked too),
/// run on a backend and compared with the float64 reference by normalised MSE
/// sum((y - r)^2) / max(sum(r^2), tiny). Integer outputs must match exactly unless
/// <see cref="IntMismatch"/> allows a fraction (only for float-vs-double argmin near-ties).
/// A null input spec passes null for an optional input.
/// </summary>
internal sealed record OpCase(string Label, TensorSpec?[] In, TensorSpec[] Out, object? Attrs = null)
{
    /// <summary>Largest normalised MSE accepted per float output.</summary>
    public double Tolerance { get; init; } = 1e-9;
    /// <summary>Largest fraction of integer outputs that may differ.</summary>
    public double IntMismatch { get; init; }
    /// <summary>Seed of the case's random contents.</summary>
    public int Seed { get; init; } = 1234;
    /// <summary>Optional hook that fixes up generated inputs (e.g. make a mask binary).</summary>
    public Action<float[][]>? Prepare { get; init; }
}
