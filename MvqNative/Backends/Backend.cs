using MvqNative.Tensors;

namespace MvqNative.Backends;

/// <summary>
/// A device that owns memory and runs ops. Ops are not methods here: they live in the
/// <see cref="Ops.OpRegistry"/>, and the backend's <see cref="ImplKind"/> picks which
/// implementation slot of each op runs.
/// </summary>
internal abstract class Backend : IDisposable
{
    private long _liveBuffers;
    private long _liveBytes;

    /// <summary>Device name as given on the command line: cpu, cuda, cuda-emu.</summary>
    public abstract string Name { get; }

    /// <summary>Which implementation slot of an op runs here: Cpu or Cuda.</summary>
    public abstract ImplKind ImplKind { get; }

    /// <summary>Buffers currently alive on this backend (tests assert it returns to zero).</summary>
    public long LiveBuffers => Interlocked.Read(ref _liveBuffers);
    public long LiveBytes => Interlocked.Read(ref _liveBytes);

    /// <summary>Allocates an uninitialised buffer of <paramref name="count"/> 4-byte elements.</summary>
    public DeviceBuffer Allocate(long count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        var b = AllocateCore(Math.Max(count, 1));
        Interlocked.Increment(ref _liveBuffers);
        Interlocked.Add(ref _liveBytes, b.Count * 4);
        return b;
    }

    protected abstract DeviceBuffer AllocateCore(long count);

    internal void OnBufferFreed(DeviceBuffer b)
    {
        Interlocked.Decrement(ref _liveBuffers);
        Interlocked.Add(ref _liveBytes, -b.Count * 4);
    }

    /// <summary>Copies host data into a buffer at an element offset.</summary>
    public abstract void Upload<T>(DeviceBuffer dst, long offset, ReadOnlySpan<T> src) where T : unmanaged;

    /// <summary>Copies buffer data to the host. Synchronises with queued work.</summary>
    public abstract void Download<T>(DeviceBuffer src, long offset, Span<T> dst) where T : unmanaged;

    /// <summary>Copies <paramref name="count"/> elements between buffers of this backend.</summary>
    public abstract void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count);

    /// <summary>Sets <paramref name="count"/> elements to the 32-bit pattern <paramref name="bits"/>.</summary>
    public abstract void Fill(DeviceBuffer dst, long offset, long count, uint bits);

    /// <summary>Waits for all queued work. No-op on the CPU.</summary>
    public virtual void Synchronize() { }

    /// <summary>Starts profiler capture (cuProfilerStart on CUDA) so Nsight records only the bracketed steps.</summary>
    public virtual void ProfilerStart() { }

    /// <summary>Stops profiler capture (cuProfilerStop on CUDA).</summary>
    public virtual void ProfilerStop() { }

    /// <summary>Opens a named range on the profiler timeline (NVTX on CUDA). Pair with <see cref="PopRange"/>.</summary>
    public virtual void PushRange(string name) { }

    public virtual void PopRange() { }

    // --- Tensor factories -------------------------------------------------------------

    public Tensor Empty(params int[] shape) => new(this, shape, DType.F32);
    public Tensor EmptyInt(params int[] shape) => new(this, shape, DType.I32);

    public Tensor Zeros(params int[] shape)
    {
        var t = Empty(shape);
        t.Zero();
        return t;
    }

    public Tensor FromArray(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Empty(shape);
        if (t.Length != data.Length) throw new ArgumentException($"data has {data.Length} elements, shape [{string.Join(',', shape)}] needs {t.Length}");
        Upload(t.Buffer, t.Offset, data);
        return t;
    }

    public Tensor FromArray(ReadOnlySpan<int> data, params int[] shape)
    {
        var t = EmptyInt(shape);
        if (t.Length != data.Length) throw new ArgumentException($"data has {data.Length} elements, shape [{string.Join(',', shape)}] needs {t.Length}");
        Upload(t.Buffer, t.Offset, data);
        return t;
    }

    public virtual void Dispose() { GC.SuppressFinalize(this); }
}

/// <summary>Implementation slots of an op.</summary>
internal enum ImplKind { Cpu, Cuda }
