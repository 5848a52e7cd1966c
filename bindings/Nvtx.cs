// NVTX ranges (libnvToolsExt.so.1) for Nsight timelines; a no-op where the library is absent.
using System.Runtime.InteropServices;

namespace MvqNative.Bindings;

/// <summary>NVTX push/pop. Missing library = silently disabled (profiling is optional).</summary>
public static unsafe partial class Nvtx
{
    static Nvtx() => CudaLibraries.EnsureResolver();

    [LibraryImport(CudaLibraries.Nvtx)] private static partial int nvtxRangePushA(byte* message);
    [LibraryImport(CudaLibraries.Nvtx)] private static partial int nvtxRangePop();

    private static int _state; // 0 unknown, 1 available, -1 absent

    /// <summary>Whether NVTX calls reach a library.</summary>
    public static bool Available
    {
        get
        {
            if (_state == 0) _state = CudaLibraries.Probe(CudaLibraries.Nvtx) is null ? -1 : 1;
            return _state > 0;
        }
    }

    /// <summary>Opens a named range; <paramref name="utf8Message"/> must end with a NUL byte (use a "..."u8 literal + "\0").</summary>
    public static void Push(ReadOnlySpan<byte> utf8Message)
    {
        if (utf8Message.IsEmpty || utf8Message[^1] != 0) throw new ArgumentException("NVTX message must end with a NUL byte", nameof(utf8Message));
        if (!Available) return;
        fixed (byte* p = utf8Message) nvtxRangePushA(p);
    }

    /// <summary>Closes the innermost range.</summary>
    public static void Pop()
    {
        if (Available) nvtxRangePop();
    }
}
