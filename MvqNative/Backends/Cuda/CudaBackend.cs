// The CUDA backend: device memory, one stream, NVRTC kernels and cuBLAS, on a GPU or the host emulator.
using System.Runtime.InteropServices;
using System.Text;
using MvqNative.Bindings;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda;

/// <summary>Device memory: a CUdeviceptr to <see cref="DeviceBuffer.Count"/> 4-byte elements.</summary>
internal sealed class CudaBuffer : DeviceBuffer
{
    private readonly CudaBackend _backend;

    /// <summary>The device address of element 0.</summary>
    public ulong Ptr { get; }

    internal CudaBuffer(CudaBackend backend, long count, ulong ptr) : base(backend, count)
    {
        _backend = backend; Ptr = ptr;
    }

    protected override void Free() => _backend.FreeDevice(Ptr);
}

/// <summary>An instantiated CUDA graph of one <see cref="CudaBackend"/> (from <see cref="CudaBackend.CaptureGraph"/>).</summary>
internal sealed class CudaGraph : IDisposable
{
    private readonly CudaBackend _backend;
    private IntPtr _exec;

    internal CudaGraph(CudaBackend backend, IntPtr exec, long nodes) { _backend = backend; _exec = exec; Nodes = nodes; }

    /// <summary>Operations recorded (kernel launches, cuBLAS calls' kernels, memsets, copies).</summary>
    public long Nodes { get; }

    /// <summary>Queues one replay on the backend's stream (cuGraphLaunch); does not wait.</summary>
    public void Launch()
    {
        ObjectDisposedException.ThrowIf(_exec == IntPtr.Zero, this);
        _backend.MakeCurrent();
        Check.Cu(CudaDriver.cuGraphLaunch(_exec, _backend.StreamPtr));
        Interlocked.Increment(ref _backend.Counters.GraphLaunches);
        Interlocked.Add(ref _backend.Counters.GraphNodes, Nodes);
    }

    public void Dispose()
    {
        if (_exec == IntPtr.Zero) return;
        try { _backend.MakeCurrent(); CudaDriver.cuGraphExecDestroy(_exec); } catch (ObjectDisposedException) { }
        _exec = IntPtr.Zero;
    }
}

/// <summary>What `mvq doctor` shows of a CUDA device.</summary>
internal sealed record CudaDeviceInfo(int Ordinal, string Name, int Major, int Minor, long TotalMemory, int SmCount, int DriverVersion)
{
    /// <summary>The NVRTC arch, e.g. sm_80.</summary>
    public string Arch => $"sm_{Major}{Minor}";
}

/// <summary>
/// CUDA backend on device <see cref="Info"/>: buffers are CUdeviceptr; uploads, copies, fills and
/// kernels are queued on one non-blocking stream (no hidden synchronisation); Download
/// synchronises. Named "cuda", or "cuda-emu" when the driver is the host emulator.
/// </summary>
internal sealed class CudaBackend : Backend
{
    private static readonly byte[] EmptyImage = [0];
    [ThreadStatic] private static IntPtr _currentContext;

    private readonly PrimaryContextHandle _context;
    private readonly IntPtr _ctx;
    private readonly StreamHandle _stream;
    private readonly Lock _gate = new();
    private readonly Lock _workspaceGate = new();
    private readonly Dictionary<string, CudaModuleHandle> _modules = new(StringComparer.Ordinal);
    private Kernel?[] _kernels = new Kernel?[32];
    private CublasHandle? _blas;
    private ulong _workspace;
    private long _workspaceBytes;
    private int _wsLeaseDepth;   // nested LockWorkspace calls on the emulator (the outermost registers the region)
    private ulong _wsLeased;
    private long _wsLeasedBytes;
    private bool _disposed;

    private CudaBackend(bool emulator, int device)
    {
        IsEmulator = emulator;
        Check.Cu(CudaDriver.cuInit(0));
        Check.Cu(CudaDriver.cuDeviceGetCount(out var count));
        if (device < 0 || device >= count) throw new ArgumentOutOfRangeException(nameof(device), $"CUDA device {device} does not exist ({count} found)");
        Check.Cu(CudaDriver.cuDeviceGet(out var dev, device));
        Info = ReadInfo(device, dev);
        _context = PrimaryContextHandle.Retain(dev);
        _ctx = _context.DangerousGetHandle();
        _currentContext = _ctx;
        _stream = StreamHandle.Create(_context);
        StreamPtr = _stream.DangerousGetHandle();
        Faults = new DeviceFaults(this);
    }

    /// <summary>
    /// Opens device <paramref name="device"/> on the real driver, or on the emulator found by
    /// <see cref="CudaLibraries.FindEmulator"/> when <paramref name="emulator"/> is true.
    /// </summary>
    /// <exception cref="DllNotFoundException">No driver (or no emulator library) found.</exception>
    /// <exception cref="InvalidOperationException">The process already bound the other kind of driver.</exception>
    public static CudaBackend Create(bool emulator, int device = 0)
    {
        if (emulator)
        {
            var path = CudaLibraries.FindEmulator() ?? throw new DllNotFoundException(
                "emulator library libmvq_emu.so not found; build it with bash tools/scripts/build-native.sh (or set MVQ_EMU_LIB)");
            CudaLibraries.UseEmulator(path);
        }
        else
        {
            CudaLibraries.RequireRealDriver();
            if (CudaLibraries.Probe(CudaLibraries.Cuda) is null) throw new DllNotFoundException("no CUDA driver found (libcuda.so.1)");
        }
        return new CudaBackend(emulator, device);
    }

    private static unsafe CudaDeviceInfo ReadInfo(int ordinal, int dev)
    {
        var name = stackalloc byte[256];
        Check.Cu(CudaDriver.cuDeviceGetName(name, 256, dev));
        Check.Cu(CudaDriver.cuDeviceGetAttribute(out var major, CUdeviceAttribute.ComputeCapabilityMajor, dev));
        Check.Cu(CudaDriver.cuDeviceGetAttribute(out var minor, CUdeviceAttribute.ComputeCapabilityMinor, dev));
        Check.Cu(CudaDriver.cuDeviceGetAttribute(out var sms, CUdeviceAttribute.MultiprocessorCount, dev));
        Check.Cu(CudaDriver.cuDeviceTotalMem_v2(out var total, dev));
        Check.Cu(CudaDriver.cuDriverGetVersion(out var version));
        return new CudaDeviceInfo(ordinal, Marshal.PtrToStringUTF8((IntPtr)name) ?? "?", major, minor, (long)total, sms, version);
    }

    public override string Name => IsEmulator ? "cuda-emu" : "cuda";
    public override ImplKind ImplKind => ImplKind.Cuda;

    /// <summary>True when running on the host emulator.</summary>
    public bool IsEmulator { get; }
    /// <summary>Name, compute capability, memory and SM count of the device.</summary>
    public CudaDeviceInfo Info { get; }
    /// <summary>The raw CUstream every operation of this backend is queued on.</summary>
    public IntPtr StreamPtr { get; }

    /// <summary>Device memory free now, in bytes (cuMemGetInfo).</summary>
    public long FreeMemory()
    {
        MakeCurrent();
        Check.Cu(CudaDriver.cuMemGetInfo_v2(out var free, out _));
        return (long)free;
    }

    /// <summary>The stream of <see cref="StreamPtr"/> (for event records and waits).</summary>
    internal StreamHandle Stream => _stream;

    /// <summary>The device's primary context (for streams, events and pinned memory made outside the backend).</summary>
    internal PrimaryContextHandle Context => _context;

    /// <summary>Launches, cuBLAS calls, copies, synchronisations and allocations issued so far (docs/perf/gpu-throughput.md).</summary>
    public CudaCounters Counters { get; } = new();

    /// <summary>Makes this backend's context current on the calling thread (a thread-local compare when it already is).</summary>
    public void MakeCurrent()
    {
        if (_currentContext == _ctx) return;
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check.Cu(CudaDriver.cuCtxSetCurrent(_ctx));
        _currentContext = _ctx;
    }

    /// <summary>The device address of a tensor's first element.</summary>
    public static ulong Ptr(Tensor t) => ((CudaBuffer)t.Buffer).Ptr + (ulong)t.Offset * 4;

    protected override DeviceBuffer AllocateCore(long count)
    {
        MakeCurrent();
        Check.Cu(CudaDriver.cuMemAlloc_v2(out var p, (nuint)(count * 4)), $"cuMemAlloc_v2({count * 4} bytes)");
        Interlocked.Increment(ref Counters.DeviceAllocs);
        return new CudaBuffer(this, count, p);
    }

    internal void FreeDevice(ulong p)
    {
        if (_disposed) return; // the context and everything in it are gone already
        MakeCurrent();
        Check.Cu(CudaDriver.cuMemFree_v2(p));
        Interlocked.Increment(ref Counters.Frees);
    }

    private static ulong At(DeviceBuffer b, long offset) => ((CudaBuffer)b).Ptr + (ulong)offset * 4;

    public override unsafe void Upload<T>(DeviceBuffer dst, long offset, ReadOnlySpan<T> src)
    {
        MakeCurrent();
        // From pageable memory the driver stages the data before returning, so src may be reused at once.
        fixed (T* p = src) Check.Cu(CudaDriver.cuMemcpyHtoDAsync_v2(At(dst, offset), p, (nuint)(src.Length * sizeof(T)), StreamPtr));
        Interlocked.Increment(ref Counters.HtoD);
    }

    public override unsafe void Download<T>(DeviceBuffer src, long offset, Span<T> dst)
    {
        MakeCurrent();
        fixed (T* p = dst)
        {
            Check.Cu(CudaDriver.cuMemcpyDtoHAsync_v2(p, At(src, offset), (nuint)(dst.Length * sizeof(T)), StreamPtr));
            QueueFaultRead();
            Check.Cu(CudaDriver.cuStreamSynchronize(StreamPtr));
        }
        Interlocked.Increment(ref Counters.DtoH);
        Interlocked.Increment(ref Counters.Syncs);
        Faults.ThrowIfRaised();
    }

    /// <summary>Kernels that find bad input record it here (<see cref="DeviceFaults"/>); raised at the next wait.</summary>
    internal DeviceFaults Faults { get; }

    // Queues the fault word's copy before a wait the caller does anyway (nothing until a faulting kernel ran).
    private unsafe void QueueFaultRead()
    {
        if (!Faults.Armed) return;
        fixed (int* h = Faults.Host) Check.Cu(CudaDriver.cuMemcpyDtoHAsync_v2(h, Faults.Word, (nuint)(Faults.Host.Length * sizeof(int)), StreamPtr));
        Interlocked.Increment(ref Counters.DtoH);
    }

    public override void Copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long count)
    {
        MakeCurrent();
        Check.Cu(CudaDriver.cuMemcpyDtoDAsync_v2(At(dst, dstOffset), At(src, srcOffset), (nuint)(count * 4), StreamPtr));
        Interlocked.Increment(ref Counters.DtoD);
    }

    public override void Fill(DeviceBuffer dst, long offset, long count, uint bits)
    {
        if (count == 0) return;
        MakeCurrent();
        Check.Cu(CudaDriver.cuMemsetD32Async(At(dst, offset), bits, (nuint)count, StreamPtr));
        Interlocked.Increment(ref Counters.Memsets);
    }

    public override void Synchronize()
    {
        MakeCurrent();
        QueueFaultRead();
        Check.Cu(CudaDriver.cuStreamSynchronize(StreamPtr));
        Interlocked.Increment(ref Counters.Syncs);
        Faults.ThrowIfRaised();
    }

    // NUL-terminated UTF-8 range names, encoded once per name so that a range costs no allocation.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> _rangeNames = new(StringComparer.Ordinal);

    /// <summary>Opens an NVTX range on the calling thread (a no-op when libnvToolsExt is absent).</summary>
    public override void PushRange(string name)
    {
        if (!Nvtx.Available) return;
        var bytes = _rangeNames.GetOrAdd(name, static n =>
        {
            var b = new byte[Encoding.UTF8.GetByteCount(n) + 1];
            Encoding.UTF8.GetBytes(n, b);
            return b;
        });
        Nvtx.Push(bytes);
    }

    /// <summary>Closes the innermost NVTX range (a no-op when libnvToolsExt is absent).</summary>
    public override void PopRange() => Nvtx.Pop();

    /// <summary>cuProfilerStart: Nsight tools started with a capture range on the profiler API record from here.</summary>
    public override void ProfilerStart()
    {
        MakeCurrent();
        Check.Cu(CudaDriver.cuProfilerStart());
    }

    /// <summary>cuProfilerStop: ends the capture range (queued work is synchronised first so it lands inside).</summary>
    public override void ProfilerStop()
    {
        MakeCurrent();
        Check.Cu(CudaDriver.cuStreamSynchronize(StreamPtr));
        Interlocked.Increment(ref Counters.Syncs);
        Check.Cu(CudaDriver.cuProfilerStop());
    }

    /// <summary>
    /// Device time in milliseconds of the work <paramref name="enqueue"/> queues on this backend's
    /// stream, measured with two CUDA events recorded around it (waits for the second event).
    /// </summary>
    public float TimeEvents(Action enqueue)
    {
        ArgumentNullException.ThrowIfNull(enqueue);
        MakeCurrent();
        using var start = EventHandle.Create(_context);
        using var end = EventHandle.Create(_context);
        start.Record(_stream);
        enqueue();
        end.Record(_stream);
        end.Synchronize();
        Interlocked.Increment(ref Counters.Syncs);
        return end.ElapsedSince(start);
    }

    /// <summary>The cuBLAS handle bound to this backend's stream (created on first use).</summary>
    public IntPtr Blas
    {
        get
        {
            if (_blas is { } b) return b.DangerousGetHandle();
            lock (_gate)
            {
                MakeCurrent();
                if (_blas is null)
                {
                    _blas = CublasHandle.Create(_context, _stream);
                    if (_tf32) Check.Cublas(Cublas.cublasSetMathMode(_blas.DangerousGetHandle(), CublasMath.Tf32TensorOp));
                }
                return _blas.DangerousGetHandle();
            }
        }
    }

    private bool _tf32;

    /// <summary>
    /// cuBLAS GEMMs with TF32 tensor-op math (CUBLAS_TF32_TENSOR_OP_MATH: inputs rounded to a 10-bit mantissa,
    /// FP32 accumulation) instead of full FP32. Off by default (tests, reference states); the emulator rounds
    /// the inputs the same way, so its effect is measurable without a GPU (docs/perf/gpu-throughput.md).
    /// </summary>
    public bool Tf32
    {
        get => _tf32;
        set
        {
            lock (_gate)
            {
                _tf32 = value;
                if (_blas is null) return;
                MakeCurrent();
                Check.Cublas(Cublas.cublasSetMathMode(_blas.DangerousGetHandle(), value ? CublasMath.Tf32TensorOp : CublasMath.Default));
            }
        }
    }

    private ulong _blasWorkspace;

    /// <summary>cuBLAS's workspace size given by <see cref="CaptureGraph"/> (32 MiB, NVIDIA's advice for Hopper).</summary>
    public const long BlasWorkspaceBytes = 32L << 20;

    /// <summary>True while <see cref="CaptureGraph"/> records this backend's stream.</summary>
    public bool Capturing { get; private set; }

    /// <summary>
    /// Records the work <paramref name="enqueue"/> queues on this backend's stream into a CUDA graph
    /// (cuStreamBeginCapture, thread-local mode: a synchronisation, host copy or allocation made by the
    /// capturing thread fails and invalidates the capture; other threads, e.g. a test host running classes
    /// in parallel, may go on allocating) and instantiates it. Work another thread queues on this same
    /// stream meanwhile would be captured too: capture on a backend no other thread uses. Nothing runs during capture: launch the result.
    /// Every kernel argument is frozen at its captured value, so whatever changes per step must be read
    /// from device memory by the kernels.
    /// </summary>
    public CudaGraph CaptureGraph(Action enqueue)
    {
        ArgumentNullException.ThrowIfNull(enqueue);
        MakeCurrent();
        var blas = Blas;
        if (_blasWorkspace == 0)
        {
            // cuBLAS would otherwise allocate its own workspace inside the capture.
            Check.Cu(CudaDriver.cuMemAlloc_v2(out _blasWorkspace, (nuint)BlasWorkspaceBytes), "cuMemAlloc_v2(cuBLAS workspace)");
            Interlocked.Increment(ref Counters.DeviceAllocs);
            Check.Cublas(Cublas.cublasSetWorkspace_v2(blas, _blasWorkspace, (nuint)BlasWorkspaceBytes));
        }
        Check.Cu(CudaDriver.cuStreamBeginCapture_v2(StreamPtr, CudaDriver.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
        Capturing = true;
        IntPtr graph;
        try { enqueue(); }
        catch
        {
            CudaDriver.cuStreamEndCapture(StreamPtr, out graph);
            if (graph != IntPtr.Zero) CudaDriver.cuGraphDestroy(graph);
            throw;
        }
        finally { Capturing = false; }
        Check.Cu(CudaDriver.cuStreamEndCapture(StreamPtr, out graph));
        try
        {
            nuint nodes = 0;
            unsafe { Check.Cu(CudaDriver.cuGraphGetNodes(graph, null, ref nodes)); }
            Check.Cu(CudaDriver.cuGraphInstantiateWithFlags(out var exec, graph, 0));
            return new CudaGraph(this, exec, (long)nodes);
        }
        finally { CudaDriver.cuGraphDestroy(graph); }
    }

    /// <summary>
    /// A scratch device buffer of at least <paramref name="bytes"/>, owned by the backend and
    /// reused by every op (ops on the one stream run in order, so they never overlap).
    /// </summary>
    public ulong Workspace(long bytes)
    {
        if (bytes <= _workspaceBytes) return _workspace;
        lock (_gate)
        {
            if (bytes <= _workspaceBytes) return _workspace;
            MakeCurrent();
            if (_workspace != 0)
            {
                Check.Cu(CudaDriver.cuStreamSynchronize(StreamPtr)); // queued kernels may still read the old one
                Check.Cu(CudaDriver.cuMemFree_v2(_workspace));
                Interlocked.Increment(ref Counters.Syncs);
                Interlocked.Increment(ref Counters.Frees);
                _workspace = 0; _workspaceBytes = 0;
            }
            long size = Math.Max(bytes, 64 * 1024);
            Check.Cu(CudaDriver.cuMemAlloc_v2(out var p, (nuint)size), $"cuMemAlloc_v2(workspace {size} bytes)");
            Interlocked.Increment(ref Counters.DeviceAllocs);
            _workspace = p; _workspaceBytes = size;
            return p;
        }
    }

    /// <summary>
    /// <see cref="Workspace"/> for one op, locked until the returned scope is disposed: ops called
    /// from several host threads share the one stream, so an op holds this while it queues the
    /// kernels that use the scratch, and no other op's kernels can overwrite it in between.
    /// <c>using var ws = b.LockWorkspace(bytes, out var scratch);</c>
    /// </summary>
    public WorkspaceLease LockWorkspace(long bytes, out ulong ptr)
    {
        var scope = _workspaceGate.EnterScope();
        try
        {
            ptr = Workspace(bytes);
            // On the emulator the bytes asked for become the buffer kernels may touch (memcheck
            // then catches a read or write past them even though the workspace is larger).
            if (IsEmulator)
            {
                // A nested lease (an op inside an op) widens the region to the larger request.
                if (_wsLeaseDepth++ == 0 || ptr != _wsLeased || bytes > _wsLeasedBytes)
                {
                    if (_wsLeased != 0) MvqEmu.TryUnregisterRegion(_wsLeased);
                    long size = Math.Max(Math.Max(bytes, 1), ptr == _wsLeased ? _wsLeasedBytes : 0);
                    MvqEmu.RegisterRegion(ptr, size, $"workspace ({size} bytes locked)");
                    _wsLeased = ptr; _wsLeasedBytes = size;
                }
            }
        }
        catch { scope.Dispose(); throw; }
        return new WorkspaceLease(scope, this);
    }

    /// <summary>Holds the workspace for one op; <c>Dispose</c> releases it (from <see cref="LockWorkspace"/>).</summary>
    public ref struct WorkspaceLease
    {
        private Lock.Scope _scope;
        private CudaBackend? _backend;

        internal WorkspaceLease(Lock.Scope scope, CudaBackend backend) { _scope = scope; _backend = backend; }

        public void Dispose()
        {
            if (_backend is { } b)
            {
                _backend = null;
                if (b._wsLeaseDepth > 0 && --b._wsLeaseDepth == 0 && b._wsLeased != 0)
                {
                    MvqEmu.TryUnregisterRegion(b._wsLeased);
                    b._wsLeased = 0; b._wsLeasedBytes = 0;
                }
                _scope.Dispose();
            }
        }
    }

    /// <summary>The kernel <paramref name="r"/> names, compiling and loading its module on first use.</summary>
    public Kernel Kernel(KernelRef r)
    {
        var table = _kernels;
        if (r.Slot < table.Length && table[r.Slot] is { } k) return k;
        return Resolve(r);
    }

    private Kernel Resolve(KernelRef r)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (r.Slot < _kernels.Length && _kernels[r.Slot] is { } k) return k;
            MakeCurrent();
            var module = Module(r.File);
            var kernel = new Kernel(this, r, module.GetFunction(r.Name));
            var table = _kernels;
            if (r.Slot >= table.Length) Array.Resize(ref table, Math.Max(r.Slot + 1, table.Length * 2));
            table[r.Slot] = kernel;
            _kernels = table;
            return kernel;
        }
    }

    /// <summary>Loads an embedded kernel file as a module (cached per backend).</summary>
    private CudaModuleHandle Module(string file)
    {
        if (_modules.TryGetValue(file, out var m)) return m;
        byte[] image;
        if (!IsEmulator) image = KernelCompiler.Compile(file, Info.Arch).Image;
        // The emulator runs its own host build of the kernels and ignores the image, but the
        // NVRTC output is still produced where NVRTC exists so that cuda-emu exercises the compile.
        else image = NvrtcProgram.IsAvailable() ? KernelCompiler.Compile(file, Info.Arch).Image : EmptyImage;
        m = CudaModuleHandle.Load(_context, image);
        _modules[file] = m;
        return m;
    }

    /// <summary>Threads per block that kernels use for 1-D grid-stride loops.</summary>
    public const int Threads = 256;

    /// <summary>Blocks for a grid-stride loop over <paramref name="n"/> elements (capped at 32 per SM).</summary>
    public uint Blocks(long n) => (uint)Math.Clamp((n + Threads - 1) / Threads, 1, Math.Max(1, Info.SmCount) * 32L);

    public override void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            try { MakeCurrent(); CudaDriver.cuStreamSynchronize(StreamPtr); } catch (CudaException) { }
            foreach (var k in _kernels) k?.Dispose();
            _blas?.Dispose();
            foreach (var m in _modules.Values) m.Dispose();
            _modules.Clear();
            if (_workspace != 0) CudaDriver.cuMemFree_v2(_workspace);
            if (_blasWorkspace != 0) CudaDriver.cuMemFree_v2(_blasWorkspace);
            _stream.Dispose();
            _disposed = true;
            _context.Dispose();
            if (_currentContext == _ctx) _currentContext = IntPtr.Zero;
        }
        base.Dispose();
    }

    public override string ToString() => $"{Name}:{Info.Ordinal} {Info.Name} ({Info.Arch}, {Info.SmCount} SMs, {Info.TotalMemory >> 20} MiB)";
}
