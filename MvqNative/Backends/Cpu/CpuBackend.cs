using System.Runtime.InteropServices;

namespace MvqNative.Backends.Cpu;

/// <summary>Host memory buffer: a managed float array (ints are reinterpreted in place).</summary>
internal sealed class CpuBuffer : DeviceBuffer
{
    public float[] Data { get; private set; }

    internal CpuBuffer(Backend backend, long count) : base(backend, count)
    {
        if (count > Array.MaxLength) throw new OutOfMemoryException($"CPU buffer of {count} elements exceeds the array limit");
        Data = GC.AllocateUninitializedArray<float>((int)count, pinned: true);
    }

    protected override void Free() => Data = [];
}

/// <summary>The managed, multi-threaded, SIMD CPU backend.</summary>
internal sealed class CpuBackend : Backend
{
    /// <summary>The process-wide CPU backend.</summary>
    public static CpuBackend Instance { get; } = new();

    public override string Name => "cpu";
    public override ImplKind ImplKind => ImplKind.Cpu;

    protected override DeviceBuffer AllocateCore(long count) => new CpuBuffer(this, count);

    private static float[] Arr(DeviceBuffer b) => ((CpuBuffer)b).Data;

    public override void Upload<T>(DeviceBuffer dst, long offset, ReadOnlySpan<T> src)
        => MemoryMarshal.Cast<T, float>(src).CopyTo(Arr(dst).AsSpan((int)offset));

    public override void Download<T>(DeviceBuffer src, long offset, Span<T> dst)
    {
        var f = MemoryMarshal.Cast<T, float>(dst);
        Arr(src).AsSpan((int)offset, f.Length).CopyTo(f);
    }

    public override void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count)
        => Arr(src).AsSpan((int)srcOffset, (int)count).CopyTo(Arr(dst).AsSpan((int)dstOffset, (int)count));

    public override void Fill(DeviceBuffer dst, long offset, long count, uint bits)
        => MemoryMarshal.Cast<float, uint>(Arr(dst).AsSpan((int)offset, (int)count)).Fill(bits);
}
