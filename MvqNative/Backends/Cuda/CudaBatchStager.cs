// Double-buffered batch staging for a dataset kept on the host: pinned host buffers, async host-to-device
// copies on a second stream, and events so that the compute stream waits on the device, never the host.
using MvqNative.Bindings;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda;

/// <summary>
/// Two slots, used alternately, each a pinned host buffer and a device buffer of one batch. Stage(slot) fills
/// the pinned buffer on the host and queues its copy on the copy stream, behind the compute stream's release of
/// the slot's device buffer (an event wait on the device); Acquire(slot) makes the compute stream wait for that
/// copy (an event wait on the device) and returns the device batch; Release(slot) records that the step reading
/// it was queued. The host waits only before refilling a pinned buffer whose copy has not run yet, which
/// happens only when it is two steps ahead of the device (counted as a sync); on cuda-emu, where a copy runs
/// when a wait orders it, never. Per step: one async copy, no allocation.
/// </summary>
internal sealed unsafe class CudaBatchStager : IDisposable
{
    private readonly CudaBackend _backend;
    private readonly StreamHandle _copy;
    private readonly PinnedHostMemory[] _pinned = new PinnedHostMemory[2];
    private readonly Tensor[] _device = new Tensor[2];
    private readonly EventHandle[] _copied = new EventHandle[2], _consumed = new EventHandle[2];
    private readonly bool[] _staged = new bool[2], _released = new bool[2];
    private readonly int _floats;

    /// <param name="backend">The compute backend (its stream runs the steps).</param>
    /// <param name="shape">Shape of one batch, [B, C, H, W].</param>
    public CudaBatchStager(CudaBackend backend, int[] shape)
    {
        _backend = backend;
        backend.MakeCurrent();
        _floats = 1;
        foreach (int d in shape) _floats *= d;
        _copy = StreamHandle.Create(backend.Context);
        for (int i = 0; i < 2; i++)
        {
            _pinned[i] = PinnedHostMemory.Alloc(backend.Context, (long)_floats * 4);
            Interlocked.Increment(ref backend.Counters.PinnedAllocs);
            _device[i] = backend.Empty(shape);
            // Timing is not needed: events without it are cheaper to record and wait on.
            _copied[i] = EventHandle.Create(backend.Context, CudaDriver.CU_EVENT_DISABLE_TIMING);
            _consumed[i] = EventHandle.Create(backend.Context, CudaDriver.CU_EVENT_DISABLE_TIMING);
        }
    }

    /// <summary>Test hook: Acquire skips the compute stream's wait for the copy (a deliberately missing wait).</summary>
    internal bool SkipDeviceWait { get; set; }

    /// <summary>Floats per batch.</summary>
    public int Floats => _floats;

    /// <summary>
    /// Fills slot's pinned buffer with <paramref name="fill"/> (after the previous copy out of it has run) and
    /// queues its copy to the slot's device buffer on the copy stream, after the compute stream released the slot.
    /// </summary>
    public void Stage(int slot, Action<Span<float>> fill)
    {
        _backend.MakeCurrent();
        if (_staged[slot] && !_copied[slot].Query())
        {
            // The host is two batches ahead of the copies: the only host wait of this path.
            _copied[slot].Synchronize();
            Interlocked.Increment(ref _backend.Counters.Syncs);
        }
        fill(new Span<float>((void*)_pinned[slot].DangerousGetHandle(), _floats));
        if (_released[slot]) _copy.WaitEvent(_consumed[slot]);
        Check.Cu(CudaDriver.cuMemcpyHtoDAsync_v2(CudaBackend.Ptr(_device[slot]), (void*)_pinned[slot].DangerousGetHandle(), (nuint)((long)_floats * 4),
            _copy.DangerousGetHandle()));
        Interlocked.Increment(ref _backend.Counters.HtoDAsync);
        _copied[slot].Record(_copy);
        _staged[slot] = true;
    }

    /// <summary>The slot's device batch; work queued on the compute stream from now on runs after its copy.</summary>
    public Tensor Acquire(int slot)
    {
        if (!_staged[slot]) throw new InvalidOperationException($"batch slot {slot} was not staged");
        _backend.MakeCurrent();
        if (!SkipDeviceWait) _backend.Stream.WaitEvent(_copied[slot]);
        return _device[slot];
    }

    /// <summary>The compute stream's work on the slot's device batch is queued: the next copy into it waits for that.</summary>
    public void Release(int slot)
    {
        _backend.MakeCurrent();
        _consumed[slot].Record(_backend.Stream);
        _released[slot] = true;
    }

    public void Dispose()
    {
        _backend.MakeCurrent();
        // Queued copies read the pinned buffers: let them finish before freeing (cuMemFreeHost would wait anyway).
        _copy.Synchronize();
        for (int i = 0; i < 2; i++)
        {
            _copied[i].Dispose();
            _consumed[i].Dispose();
            _device[i].Dispose();
            _pinned[i].Dispose();
        }
        _copy.Dispose();
    }
}
