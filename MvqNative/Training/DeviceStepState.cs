// DeviceStepState.cs: the step counter of a training step whose inputs are made on the device.
using MvqNative.Backends;
using MvqNative.Backends.Cuda;
using MvqNative.Backends.Cuda.Kernels;
using MvqNative.Tensors;

namespace MvqNative.Training;

/// <summary>
/// A device int64[2] that kernels read instead of host values that change per step (device_step.cu):
/// [0] = <see cref="T"/>, steps run by this pipeline; [1] = the T of row 0 of the AdamW schedule table.
/// The host keeps a mirror of both; <see cref="Advance"/> queues the increment at the end of a step.
/// On the CPU backend the buffer exists but only the mirror is used.
/// </summary>
internal sealed class DeviceStepState : IDisposable
{
    private readonly Backend _backend;
    private readonly Tensor _buffer;

    public DeviceStepState(Backend backend)
    {
        _backend = backend;
        _buffer = backend.Zeros(4); // two int64 of zero bits
    }

    /// <summary>Host mirror of state[0]: steps queued so far.</summary>
    public long T { get; private set; }

    /// <summary>Host mirror of state[1].</summary>
    public long ScheduleBase { get; private set; }

    /// <summary>The device address of state[0] (CUDA backends only).</summary>
    public ulong Ptr => CudaBackend.Ptr(_buffer);

    /// <summary>Queues state[0] += 1 (a kernel on CUDA) and advances the mirror; inside a captured step it is part of the graph.</summary>
    public void Advance()
    {
        if (_backend is CudaBackend cuda) CudaDeviceStep.Advance(cuda, Ptr);
        T++;
    }

    /// <summary>Counts a step that ran as a graph replay (its increment was the replayed kernel).</summary>
    public void Replayed() => T++;

    /// <summary>Sets state[1] (an upload: call between steps, never inside a captured one).</summary>
    public void SetScheduleBase(long value)
    {
        ScheduleBase = value;
        _buffer.Backend.Upload(_buffer.Buffer, _buffer.Offset + 2, (ReadOnlySpan<long>)[value]);
    }

    public void Dispose() => _buffer.Dispose();
}
