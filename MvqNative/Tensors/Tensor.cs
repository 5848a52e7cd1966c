using System.Runtime.InteropServices;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;

namespace MvqNative.Tensors;

/// <summary>
/// A dense, row-major, 4-byte-element tensor over a backend buffer. A tensor made by a
/// factory owns its buffer; <see cref="View"/> and <see cref="Reshape"/> share it.
/// </summary>
internal sealed class Tensor : IDisposable
{
    private readonly bool _owns;

    public Backend Backend { get; }
    public DeviceBuffer Buffer { get; }
    /// <summary>Element offset of this tensor's first element in <see cref="Buffer"/>.</summary>
    public long Offset { get; }
    public int[] Shape { get; }
    public DType DType { get; }
    public int Length { get; }
    public int Rank => Shape.Length;

    internal Tensor(Backend backend, int[] shape, DType dtype)
    {
        Backend = backend;
        Shape = (int[])shape.Clone();
        DType = dtype;
        Length = CheckedLength(shape);
        Buffer = backend.Allocate(Length);
        _owns = true;
    }

    private Tensor(Tensor parent, long offset, int[] shape, DType dtype)
    {
        Backend = parent.Backend;
        Buffer = parent.Buffer;
        Offset = offset;
        Shape = shape;
        DType = dtype;
        Length = CheckedLength(shape);
        _owns = false;
    }

    private static int CheckedLength(int[] shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(',', shape)}]");
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"shape [{string.Join(',', shape)}] is too large");
        return (int)n;
    }

    /// <summary>Size of dimension <paramref name="i"/>; negative counts from the end.</summary>
    public int Dim(int i) => Shape[i < 0 ? Shape.Length + i : i];

    /// <summary>A view with a new shape of the same element count (-1 infers one dimension).</summary>
    public Tensor Reshape(params int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            int known = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) known *= shape[i];
            shape[infer] = known == 0 ? 0 : Length / known;
        }
        if (CheckedLength(shape) != Length)
            throw new ArgumentException($"cannot reshape [{ShapeString}] to [{string.Join(',', shape)}]");
        return new Tensor(this, Offset, shape, DType);
    }

    /// <summary>A view of <paramref name="count"/> slices along dimension 0 starting at <paramref name="start"/>.</summary>
    public Tensor Slice0(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Shape[0]) throw new ArgumentOutOfRangeException(nameof(start));
        int inner = Shape[0] == 0 ? 0 : Length / Shape[0];
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        return new Tensor(this, Offset + (long)start * inner, shape, DType);
    }

    /// <summary>The same memory seen as another element type (bit cast).</summary>
    public Tensor View(DType dtype) => new(this, Offset, (int[])Shape.Clone(), dtype);

    public string ShapeString => string.Join(',', Shape);

    public bool SameShape(Tensor o) => Shape.AsSpan().SequenceEqual(o.Shape);

    public void Zero() => Backend.Fill(Buffer, Offset, Length, 0);

    public void Fill(float v) => Backend.Fill(Buffer, Offset, Length, BitConverter.SingleToUInt32Bits(v));

    public void CopyFrom(ReadOnlySpan<float> src)
    {
        if (src.Length != Length) throw new ArgumentException($"source has {src.Length} elements, tensor [{ShapeString}] has {Length}");
        Backend.Upload(Buffer, Offset, src);
    }

    public void CopyFrom(ReadOnlySpan<int> src)
    {
        if (src.Length != Length) throw new ArgumentException($"source has {src.Length} elements, tensor [{ShapeString}] has {Length}");
        Backend.Upload(Buffer, Offset, src);
    }

    /// <summary>Copies another tensor of the same element count on the same backend.</summary>
    public void CopyFrom(Tensor src)
    {
        if (src.Length != Length) throw new ArgumentException($"copy of [{src.ShapeString}] into [{ShapeString}]");
        Backend.Copy(src.Buffer, src.Offset, Buffer, Offset, Length);
    }

    public float[] ToArray()
    {
        var a = new float[Length];
        Backend.Download(Buffer, Offset, a.AsSpan());
        return a;
    }

    public int[] ToIntArray()
    {
        var a = new int[Length];
        Backend.Download(Buffer, Offset, a.AsSpan());
        return a;
    }

    /// <summary>Host span of a CPU tensor (throws on other backends).</summary>
    public Span<float> Span
    {
        get
        {
            if (Buffer is not CpuBuffer cb) throw new InvalidOperationException($"Span needs a CPU tensor; this one lives on {Backend.Name}");
            return cb.Data.AsSpan((int)Offset, Length);
        }
    }

    /// <summary>Host span of a CPU int tensor.</summary>
    public Span<int> IntSpan => MemoryMarshal.Cast<float, int>(Span);

    public void Dispose()
    {
        if (_owns) Buffer.Dispose();
    }

    public override string ToString() => $"Tensor<{DType}>[{ShapeString}] on {Backend.Name}";
}
