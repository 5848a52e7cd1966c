// SafeHandles owning driver, NVRTC and cuBLAS objects; release never throws (status ignored).
using Microsoft.Win32.SafeHandles;

namespace MvqNative.Bindings;

/// <summary>A retained primary context of one device. Release = cuDevicePrimaryCtxRelease_v2.</summary>
public sealed class PrimaryContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>Device ordinal the context belongs to.</summary>
    public int Device { get; private set; }

    public PrimaryContextHandle() : base(true) { }

    /// <summary>Retains the primary context of <paramref name="device"/> and makes it current on this thread.</summary>
    public static PrimaryContextHandle Retain(int device)
    {
        Check.Cu(CudaDriver.cuDevicePrimaryCtxRetain(out var ctx, device));
        var h = new PrimaryContextHandle { Device = device };
        h.SetHandle(ctx);
        Check.Cu(CudaDriver.cuCtxSetCurrent(ctx));
        return h;
    }

    /// <summary>Makes the context current on the calling thread.</summary>
    public void MakeCurrent() => Check.Cu(CudaDriver.cuCtxSetCurrent(handle));

    protected override bool ReleaseHandle() => CudaDriver.cuDevicePrimaryCtxRelease_v2(Device) == CUresult.Success;
}

/// <summary>Base of handles created inside a context: release makes that context current first.</summary>
public abstract class ContextBoundHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    /// <summary>The raw context the object lives in.</summary>
    protected IntPtr Context { get; private set; }

    protected ContextBoundHandle() : base(true) { }

    protected void Init(IntPtr context, IntPtr value) { Context = context; SetHandle(value); }

    protected sealed override bool ReleaseHandle()
    {
        if (Context != IntPtr.Zero) CudaDriver.cuCtxSetCurrent(Context);
        return Destroy(handle);
    }

    protected abstract bool Destroy(IntPtr h);
}

/// <summary>A loaded module (cubin or PTX image). Release = cuModuleUnload.</summary>
public sealed class CudaModuleHandle : ContextBoundHandle
{
    /// <summary>Loads an image (NUL-terminated PTX or a cubin) into <paramref name="context"/>.</summary>
    public static unsafe CudaModuleHandle Load(PrimaryContextHandle context, ReadOnlySpan<byte> image)
    {
        IntPtr m;
        fixed (byte* p = image) Check.Cu(CudaDriver.cuModuleLoadData(out m, p));
        var h = new CudaModuleHandle();
        h.Init(context.DangerousGetHandle(), m);
        return h;
    }

    /// <summary>The function named <paramref name="name"/> (not owned: valid while the module is loaded).</summary>
    public IntPtr GetFunction(string name)
    {
        Check.Cu(CudaDriver.cuModuleGetFunction(out var f, handle, name), $"cuModuleGetFunction(\"{name}\")");
        return f;
    }

    protected override bool Destroy(IntPtr h) => CudaDriver.cuModuleUnload(h) == CUresult.Success;
}

/// <summary>A stream. Release = cuStreamDestroy.</summary>
public sealed class StreamHandle : ContextBoundHandle
{
    public static StreamHandle Create(PrimaryContextHandle context, uint flags = CudaDriver.CU_STREAM_NON_BLOCKING)
    {
        Check.Cu(CudaDriver.cuStreamCreate(out var s, flags));
        var h = new StreamHandle();
        h.Init(context.DangerousGetHandle(), s);
        return h;
    }

    /// <summary>Waits for all work queued on the stream.</summary>
    public void Synchronize() => Check.Cu(CudaDriver.cuStreamSynchronize(handle));

    /// <summary>Work queued on this stream from now on waits, on the device, for the work recorded by <paramref name="e"/> (the host does not wait).</summary>
    public void WaitEvent(EventHandle e) => Check.Cu(CudaDriver.cuStreamWaitEvent(handle, e.DangerousGetHandle(), 0));

    protected override bool Destroy(IntPtr h) => CudaDriver.cuStreamDestroy(h) == CUresult.Success;
}

/// <summary>An event for timing. Release = cuEventDestroy.</summary>
public sealed class EventHandle : ContextBoundHandle
{
    public static EventHandle Create(PrimaryContextHandle context, uint flags = 0)
    {
        Check.Cu(CudaDriver.cuEventCreate(out var e, flags));
        var h = new EventHandle();
        h.Init(context.DangerousGetHandle(), e);
        return h;
    }

    public void Record(StreamHandle stream) => Check.Cu(CudaDriver.cuEventRecord(handle, stream.DangerousGetHandle()));
    public void Synchronize() => Check.Cu(CudaDriver.cuEventSynchronize(handle));

    /// <summary>True when the recorded work has completed, false when it has not yet (never blocks).</summary>
    public bool Query()
    {
        var r = CudaDriver.cuEventQuery(handle);
        if (r == CUresult.ErrorNotReady) return false;
        Check.Cu(r);
        return true;
    }

    /// <summary>Milliseconds between <paramref name="start"/> and this event (both recorded and complete).</summary>
    public float ElapsedSince(EventHandle start)
    {
        Check.Cu(CudaDriver.cuEventElapsedTime(out var ms, start.DangerousGetHandle(), handle));
        return ms;
    }

    protected override bool Destroy(IntPtr h) => CudaDriver.cuEventDestroy(h) == CUresult.Success;
}

/// <summary>Page-locked host memory (cuMemHostAlloc): the host address is the handle. Release = cuMemFreeHost.</summary>
public sealed class PinnedHostMemory : ContextBoundHandle
{
    /// <summary>Bytes allocated.</summary>
    public long Bytes { get; private set; }

    /// <summary>Allocates <paramref name="bytes"/> of pinned host memory in <paramref name="context"/>.</summary>
    public static PinnedHostMemory Alloc(PrimaryContextHandle context, long bytes, uint flags = 0)
    {
        Check.Cu(CudaDriver.cuMemHostAlloc(out var p, (nuint)bytes, flags), $"cuMemHostAlloc({bytes} bytes)");
        var h = new PinnedHostMemory { Bytes = bytes };
        h.Init(context.DangerousGetHandle(), p);
        return h;
    }

    protected override bool Destroy(IntPtr h) => CudaDriver.cuMemFreeHost(h) == CUresult.Success;
}

/// <summary>A cuBLAS handle bound to one stream. Release = cublasDestroy_v2.</summary>
public sealed class CublasHandle : ContextBoundHandle
{
    public static CublasHandle Create(PrimaryContextHandle context, StreamHandle stream)
    {
        Check.Cublas(Cublas.cublasCreate_v2(out var b));
        var h = new CublasHandle();
        h.Init(context.DangerousGetHandle(), b);
        Check.Cublas(Cublas.cublasSetStream_v2(b, stream.DangerousGetHandle()));
        return h;
    }

    protected override bool Destroy(IntPtr h) => Cublas.cublasDestroy_v2(h) == CublasStatus.Success;
}

/// <summary>An NVRTC program. Release = nvrtcDestroyProgram.</summary>
public sealed class NvrtcProgramHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public NvrtcProgramHandle() : base(true) { }

    internal static NvrtcProgramHandle Wrap(IntPtr p)
    {
        var h = new NvrtcProgramHandle();
        h.SetHandle(p);
        return h;
    }

    protected override bool ReleaseHandle()
    {
        var p = handle;
        return Nvrtc.nvrtcDestroyProgram(ref p) == NvrtcResult.Success;
    }
}
