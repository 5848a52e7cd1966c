// Typed kernel launcher: arguments go into a preallocated unmanaged block, nothing boxes or allocates per launch.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MvqNative.Bindings;

namespace MvqNative.Backends.Cuda;

/// <summary>Grid or block dimensions.</summary>
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new(checked((uint)x));
    public static implicit operator Dim3(uint x) => new(x);
}

/// <summary>Names a kernel by (file, name); resolved once per backend into a <see cref="Kernel"/>.</summary>
internal sealed class KernelRef
{
    private static int _next;

    /// <param name="file">Embedded source file, e.g. "vq.cu".</param>
    /// <param name="name">extern "C" kernel name, e.g. "vq_lookup_forward".</param>
    public KernelRef(string file, string name)
    {
        File = file; Name = name;
        Slot = Interlocked.Increment(ref _next) - 1;
    }

    public string File { get; }
    public string Name { get; }
    /// <summary>Index into each backend's kernel table (so lookups are an array read).</summary>
    internal int Slot { get; }

    public override string ToString() => $"{File}:{Name}";
}

/// <summary>
/// A resolved kernel function of one <see cref="CudaBackend"/>. <c>Launch(grid, block, shared, args...)</c>
/// writes each argument into its 16-byte slot of an unmanaged block whose pointer table is built
/// once, then calls cuLaunchKernel on the backend's stream. Launches of one kernel are serialised
/// by a lock (the block is shared); kernel arguments must be unmanaged values (device pointers
/// are <c>ulong</c>).
/// </summary>
internal sealed unsafe class Kernel : IDisposable
{
    /// <summary>Most arguments a kernel may take.</summary>
    public const int MaxArgs = 32;
    private const int SlotBytes = 16;

    private readonly CudaBackend _backend;
    private readonly IntPtr _function;
    private readonly Lock _gate = new();
    private byte* _slots;
    private void** _table;

    internal Kernel(CudaBackend backend, KernelRef r, IntPtr function)
    {
        _backend = backend; _function = function;
        File = r.File; Name = r.Name;
        _slots = (byte*)NativeMemory.AlignedAlloc(MaxArgs * SlotBytes, 16);
        _table = (void**)NativeMemory.Alloc(MaxArgs, (nuint)sizeof(void*));
        for (int i = 0; i < MaxArgs; i++) _table[i] = _slots + i * SlotBytes;
    }

    public string File { get; }
    public string Name { get; }

    /// <summary>Reads a function attribute (registers, max threads per block, ...).</summary>
    public int GetAttribute(CUfunctionAttribute a)
    {
        _backend.MakeCurrent();
        Check.Cu(CudaDriver.cuFuncGetAttribute(out var v, a, _function), $"cuFuncGetAttribute({Name}, {a})");
        return v;
    }

    /// <summary>Allows more than 48 KiB of dynamic shared memory.</summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        _backend.MakeCurrent();
        Check.Cu(CudaDriver.cuFuncSetAttribute(_function, CUfunctionAttribute.MaxDynamicSharedSizeBytes, bytes), $"cuFuncSetAttribute({Name})");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Set<T>(int i, T value) where T : unmanaged
    {
        if (sizeof(T) > SlotBytes) ThrowTooLarge(typeof(T));
        Unsafe.WriteUnaligned(_slots + i * SlotBytes, value);
    }

    private static void ThrowTooLarge(Type t) => throw new ArgumentException($"kernel argument of type {t.Name} exceeds {SlotBytes} bytes");

    private void Go(Dim3 grid, Dim3 block, uint shared)
    {
        if (_slots == null) throw new ObjectDisposedException($"kernel {Name}");
        _backend.MakeCurrent();
        var rc = CudaDriver.cuLaunchKernel(_function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, shared,
            _backend.StreamPtr, _table, null);
        if (rc != CUresult.Success) ThrowLaunch(rc, grid, block, shared);
        Interlocked.Increment(ref _backend.Counters.Launches);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowLaunch(CUresult rc, Dim3 grid, Dim3 block, uint shared) =>
        Check.Cu(rc, $"cuLaunchKernel({File}:{Name}, grid ({grid.X},{grid.Y},{grid.Z}), block ({block.X},{block.Y},{block.Z}), shared {shared})");

    public void Launch<T0>(Dim3 grid, Dim3 block, uint shared, T0 a0) where T0 : unmanaged
    { lock (_gate) { Set(0, a0); Go(grid, block, shared); } }

    public void Launch<T0, T1>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1) where T0 : unmanaged where T1 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3, T4>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged where T4 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Set(4, a4); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3, T4, T5>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged where T4 : unmanaged where T5 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Set(4, a4); Set(5, a5); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3, T4, T5, T6>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged where T4 : unmanaged where T5 : unmanaged where T6 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Set(4, a4); Set(5, a5); Set(6, a6); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3, T4, T5, T6, T7>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged where T4 : unmanaged where T5 : unmanaged where T6 : unmanaged where T7 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Set(4, a4); Set(5, a5); Set(6, a6); Set(7, a7); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3, T4, T5, T6, T7, T8>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged where T4 : unmanaged where T5 : unmanaged where T6 : unmanaged where T7 : unmanaged where T8 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Set(4, a4); Set(5, a5); Set(6, a6); Set(7, a7); Set(8, a8); Go(grid, block, shared); } }

    public void Launch<T0, T1, T2, T3, T4, T5, T6, T7, T8, T9>(Dim3 grid, Dim3 block, uint shared, T0 a0, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9)
        where T0 : unmanaged where T1 : unmanaged where T2 : unmanaged where T3 : unmanaged where T4 : unmanaged where T5 : unmanaged where T6 : unmanaged where T7 : unmanaged where T8 : unmanaged where T9 : unmanaged
    { lock (_gate) { Set(0, a0); Set(1, a1); Set(2, a2); Set(3, a3); Set(4, a4); Set(5, a5); Set(6, a6); Set(7, a7); Set(8, a8); Set(9, a9); Go(grid, block, shared); } }

    /// <summary>
    /// A launch with any number of arguments up to <see cref="MaxArgs"/>, for kernels past the ten of
    /// <c>Launch&lt;T0..T9&gt;</c>: <c>k.Args().Add(a0).Add(a1)...Launch(grid, block, shared)</c>. The same
    /// preallocated slots, nothing allocated; the kernel's lock is held from Args() to Launch, so compute
    /// the argument values before the chain.
    /// </summary>
    public ArgList Args()
    {
        if (_slots == null) throw new ObjectDisposedException($"kernel {Name}");
        _gate.Enter();
        return new ArgList(this, 0);
    }

    /// <summary>The arguments written so far of a launch started by <see cref="Args"/>.</summary>
    public readonly ref struct ArgList
    {
        private readonly Kernel _k;
        private readonly int _n;

        internal ArgList(Kernel k, int n) { _k = k; _n = n; }

        /// <summary>Writes the next argument (an unmanaged value of at most 16 bytes; device pointers are ulong).</summary>
        public ArgList Add<T>(T value) where T : unmanaged
        {
            if (_n >= MaxArgs || sizeof(T) > SlotBytes)
            {
                _k._gate.Exit();
                if (_n >= MaxArgs) throw new ArgumentException($"kernel {_k.Name}: more than {MaxArgs} arguments");
                ThrowTooLarge(typeof(T));
            }
            _k.Set(_n, value);
            return new ArgList(_k, _n + 1);
        }

        /// <summary>Launches with the arguments written so far and releases the kernel.</summary>
        public void Launch(Dim3 grid, Dim3 block, uint shared)
        {
            try { _k.Go(grid, block, shared); }
            finally { _k._gate.Exit(); }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_slots == null) return;
            NativeMemory.AlignedFree(_slots); _slots = null;
            NativeMemory.Free(_table); _table = null;
        }
    }
}
