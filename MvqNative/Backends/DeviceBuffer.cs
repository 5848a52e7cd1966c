namespace MvqNative.Backends;

/// <summary>
/// A block of backend memory holding <see cref="Count"/> 4-byte elements. Owned by
/// exactly one tensor (views share it without owning). Freed by Dispose, never by a finalizer.
/// </summary>
internal abstract class DeviceBuffer : IDisposable
{
    /// <summary>Number of 4-byte elements.</summary>
    public long Count { get; }
    /// <summary>The backend that allocated this buffer.</summary>
    public Backend Backend { get; }
    public bool IsDisposed { get; private set; }

    protected DeviceBuffer(Backend backend, long count)
    {
        Backend = backend;
        Count = count;
    }

    protected abstract void Free();

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Free();
        Backend.OnBufferFreed(this);
    }
}
