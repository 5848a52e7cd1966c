// LibraryImport declarations of the CUDA driver API subset the library uses (cuda.h),
// plus the two extra exports of the host emulator.
using System.Runtime.InteropServices;

namespace MvqNative.Bindings;

/// <summary>CUresult: status code of every driver call (0 = success).</summary>
public enum CUresult
{
    Success = 0,
    ErrorInvalidValue = 1,
    ErrorOutOfMemory = 2,
    ErrorNotInitialized = 3,
    ErrorDeinitialized = 4,
    ErrorNoDevice = 100,
    ErrorInvalidDevice = 101,
    ErrorInvalidImage = 200,
    ErrorInvalidContext = 201,
    ErrorInvalidPtx = 218,
    ErrorUnsupportedPtxVersion = 222,
    ErrorNotFound = 500,
    ErrorNotReady = 600,
    ErrorIllegalAddress = 700,
    ErrorLaunchOutOfResources = 701,
    ErrorLaunchFailed = 719,
    ErrorIllegalState = 401,
    ErrorStreamCaptureUnsupported = 900,
    ErrorStreamCaptureInvalidated = 901,
    ErrorUnknown = 999,
}

/// <summary>CUdevice_attribute values read by the library.</summary>
public enum CUdeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    MultiprocessorCount = 16,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary>CUfunction_attribute values read or set by the library.</summary>
public enum CUfunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    NumRegs = 4,
    MaxDynamicSharedSizeBytes = 8,
}

/// <summary>The CUDA driver API (libcuda.so.1, or libmvq_emu.so in emulator mode).</summary>
public static unsafe partial class CudaDriver
{
    static CudaDriver() => CudaLibraries.EnsureResolver();

    private const string L = CudaLibraries.Cuda;

    [LibraryImport(L)] public static partial CUresult cuInit(uint flags);
    [LibraryImport(L)] public static partial CUresult cuDriverGetVersion(out int version);
    [LibraryImport(L)] public static partial CUresult cuDeviceGetCount(out int count);
    [LibraryImport(L)] public static partial CUresult cuDeviceGet(out int device, int ordinal);
    [LibraryImport(L)] public static partial CUresult cuDeviceGetName(byte* name, int len, int device);
    [LibraryImport(L)] public static partial CUresult cuDeviceGetAttribute(out int value, CUdeviceAttribute attrib, int device);
    [LibraryImport(L)] public static partial CUresult cuDeviceTotalMem_v2(out nuint bytes, int device);

    [LibraryImport(L)] public static partial CUresult cuDevicePrimaryCtxRetain(out IntPtr ctx, int device);
    [LibraryImport(L)] public static partial CUresult cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(L)] public static partial CUresult cuCtxSetCurrent(IntPtr ctx);
    [LibraryImport(L)] public static partial CUresult cuCtxSynchronize();

    [LibraryImport(L)] public static partial CUresult cuMemAlloc_v2(out ulong dptr, nuint bytes);
    [LibraryImport(L)] public static partial CUresult cuMemFree_v2(ulong dptr);
    [LibraryImport(L)] public static partial CUresult cuMemGetInfo_v2(out nuint free, out nuint total);
    [LibraryImport(L)] public static partial CUresult cuMemcpyHtoD_v2(ulong dst, void* src, nuint bytes);
    [LibraryImport(L)] public static partial CUresult cuMemcpyDtoH_v2(void* dst, ulong src, nuint bytes);
    [LibraryImport(L)] public static partial CUresult cuMemcpyDtoD_v2(ulong dst, ulong src, nuint bytes);
    [LibraryImport(L)] public static partial CUresult cuMemcpyHtoDAsync_v2(ulong dst, void* src, nuint bytes, IntPtr stream);
    [LibraryImport(L)] public static partial CUresult cuMemcpyDtoHAsync_v2(void* dst, ulong src, nuint bytes, IntPtr stream);
    [LibraryImport(L)] public static partial CUresult cuMemcpyDtoDAsync_v2(ulong dst, ulong src, nuint bytes, IntPtr stream);
    [LibraryImport(L)] public static partial CUresult cuMemsetD32_v2(ulong dst, uint value, nuint count);
    [LibraryImport(L)] public static partial CUresult cuMemsetD32Async(ulong dst, uint value, nuint count, IntPtr stream);

    [LibraryImport(L)] public static partial CUresult cuModuleLoadData(out IntPtr module, void* image);
    [LibraryImport(L)] public static partial CUresult cuModuleLoadDataEx(out IntPtr module, void* image, uint numOptions, int* options, void** optionValues);
    [LibraryImport(L)] public static partial CUresult cuModuleUnload(IntPtr module);
    [LibraryImport(L, StringMarshalling = StringMarshalling.Utf8)] public static partial CUresult cuModuleGetFunction(out IntPtr function, IntPtr module, string name);
    [LibraryImport(L)] public static partial CUresult cuFuncGetAttribute(out int value, CUfunctionAttribute attrib, IntPtr function);
    [LibraryImport(L)] public static partial CUresult cuFuncSetAttribute(IntPtr function, CUfunctionAttribute attrib, int value);

    /// <summary>Launches <paramref name="f"/>; <paramref name="kernelParams"/> points to one pointer per kernel argument.</summary>
    [LibraryImport(L)]
    public static partial CUresult cuLaunchKernel(IntPtr f, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedMemBytes, IntPtr stream, void** kernelParams, void** extra);

    [LibraryImport(L)] public static partial CUresult cuStreamCreate(out IntPtr stream, uint flags);
    [LibraryImport(L)] public static partial CUresult cuStreamDestroy(IntPtr stream);
    [LibraryImport(L)] public static partial CUresult cuStreamSynchronize(IntPtr stream);

    /// <summary>Starts recording the work queued on <paramref name="stream"/> into a graph (CUstreamCaptureMode <paramref name="mode"/>).</summary>
    [LibraryImport(L)] public static partial CUresult cuStreamBeginCapture_v2(IntPtr stream, int mode);
    [LibraryImport(L)] public static partial CUresult cuStreamEndCapture(IntPtr stream, out IntPtr graph);
    [LibraryImport(L)] public static partial CUresult cuStreamIsCapturing(IntPtr stream, out int status);
    [LibraryImport(L)] public static partial CUresult cuGraphGetNodes(IntPtr graph, IntPtr* nodes, ref nuint count);
    [LibraryImport(L)] public static partial CUresult cuGraphInstantiateWithFlags(out IntPtr exec, IntPtr graph, ulong flags);
    [LibraryImport(L)] public static partial CUresult cuGraphLaunch(IntPtr exec, IntPtr stream);
    [LibraryImport(L)] public static partial CUresult cuGraphExecDestroy(IntPtr exec);
    [LibraryImport(L)] public static partial CUresult cuGraphDestroy(IntPtr graph);

    /// <summary>CUstreamCaptureMode: calls that are unsafe during capture (sync, alloc) fail from any thread.</summary>
    public const int CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
    /// <summary>CUstreamCaptureMode: unsafe calls fail only on the capturing thread (other threads may allocate and synchronise).</summary>
    public const int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;

    [LibraryImport(L)] public static partial CUresult cuEventCreate(out IntPtr ev, uint flags);
    [LibraryImport(L)] public static partial CUresult cuEventRecord(IntPtr ev, IntPtr stream);
    [LibraryImport(L)] public static partial CUresult cuEventSynchronize(IntPtr ev);
    /// <summary>Success when the event's recorded work has completed, <see cref="CUresult.ErrorNotReady"/> when not yet (never blocks).</summary>
    [LibraryImport(L)] public static partial CUresult cuEventQuery(IntPtr ev);
    /// <summary>Work queued on <paramref name="stream"/> after this call waits, on the device, for the event's recorded work.</summary>
    [LibraryImport(L)] public static partial CUresult cuStreamWaitEvent(IntPtr stream, IntPtr ev, uint flags);

    /// <summary>Page-locked (pinned) host memory, the source of truly asynchronous host-to-device copies.</summary>
    [LibraryImport(L)] public static partial CUresult cuMemHostAlloc(out IntPtr pp, nuint bytes, uint flags);
    [LibraryImport(L)] public static partial CUresult cuMemFreeHost(IntPtr p);

    /// <summary>Flag of cuEventCreate: the event records no timestamp (cheaper; cuEventElapsedTime refuses it).</summary>
    public const uint CU_EVENT_DISABLE_TIMING = 2;
    [LibraryImport(L)] public static partial CUresult cuEventElapsedTime(out float milliseconds, IntPtr start, IntPtr end);
    [LibraryImport(L)] public static partial CUresult cuEventDestroy(IntPtr ev);

    [LibraryImport(L)] public static partial CUresult cuProfilerStart();
    [LibraryImport(L)] public static partial CUresult cuProfilerStop();

    [LibraryImport(L)] public static partial CUresult cuGetErrorName(CUresult error, out byte* name);
    [LibraryImport(L)] public static partial CUresult cuGetErrorString(CUresult error, out byte* text);

    /// <summary>Flag of cuStreamCreate: no implicit synchronisation with the legacy default stream.</summary>
    public const uint CU_STREAM_NON_BLOCKING = 1;

    /// <summary>Name of a status code ("CUDA_ERROR_INVALID_VALUE"), or its number when the driver does not know it.</summary>
    public static string ErrorName(CUresult r)
    {
        try
        {
            return cuGetErrorName(r, out var p) == CUresult.Success && p != null ? Marshal.PtrToStringUTF8((IntPtr)p)! : $"CUresult {(int)r}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return $"CUresult {(int)r}"; }
    }

    /// <summary>Description of a status code.</summary>
    public static string ErrorString(CUresult r)
    {
        try
        {
            return cuGetErrorString(r, out var p) == CUresult.Success && p != null ? Marshal.PtrToStringUTF8((IntPtr)p)! : "";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return ""; }
    }
}

/// <summary>Exports only the host emulator has (call them only when <see cref="CudaLibraries.IsEmulator"/>).</summary>
public static unsafe partial class MvqEmu
{
    static MvqEmu() => CudaLibraries.EnsureResolver();

    [LibraryImport(CudaLibraries.Cuda)] private static partial int mvqemu_is_emulator();
    [LibraryImport(CudaLibraries.Cuda)] private static partial byte* mvqemu_last_error();
    [LibraryImport(CudaLibraries.Cuda, StringMarshalling = StringMarshalling.Utf8)] private static partial int mvqemu_register_region(ulong p, nuint bytes, string name);
    [LibraryImport(CudaLibraries.Cuda)] private static partial int mvqemu_unregister_region(ulong p);
    [LibraryImport(CudaLibraries.Cuda)] private static partial byte* mvqemu_checkers();
    [LibraryImport(CudaLibraries.Cuda)] private static partial byte* mvqemu_card();
    [LibraryImport(CudaLibraries.Cuda)] private static partial ulong mvqemu_checked_launch_count();
    [LibraryImport(CudaLibraries.Cuda)] private static partial ulong mvqemu_launch_count();

    /// <summary>Kernel launches the emulator ran so far (graph replays included), or 0 without the emulator.</summary>
    public static ulong Launches() => CudaLibraries.IsEmulator ? mvqemu_launch_count() : 0;

    /// <summary>
    /// Tells the emulator's memcheck that a kernel argument pointing into [p, p + bytes) may touch only
    /// those bytes of the allocation (a sub-allocation such as the part of a workspace an op asked for).
    /// </summary>
    public static void RegisterRegion(ulong p, long bytes, string name)
    {
        if (mvqemu_register_region(p, (nuint)bytes, name) != 0) throw new InvalidOperationException(LastError() ?? "mvqemu_register_region failed");
    }

    /// <summary>Ends a region given to <see cref="RegisterRegion"/>; false when none starts at p (e.g. its allocation was freed).</summary>
    public static bool TryUnregisterRegion(ulong p) => mvqemu_unregister_region(p) == 0;

    /// <summary>The sanitizer's checkers in force (e.g. "memcheck,initcheck,racecheck,synccheck,shuffle"), or null without the emulator.</summary>
    public static string? Checkers() => Text(&mvqemu_checkers);

    /// <summary>The arch of the card the emulator imitates ("sm_90" or "sm_80"), or null without the emulator.</summary>
    public static string? Card() => Text(&mvqemu_card);

    /// <summary>Kernel launches so far that ran under at least one checker.</summary>
    public static ulong CheckedLaunches() => CudaLibraries.IsEmulator ? mvqemu_checked_launch_count() : 0;

    private static string? Text(delegate*<byte*> f)
    {
        if (!CudaLibraries.IsEmulator) return null;
        try { var p = f(); return p == null ? null : Marshal.PtrToStringUTF8((IntPtr)p); }
        catch (EntryPointNotFoundException) { return null; }
    }

    /// <summary>True when the bound driver library is the emulator.</summary>
    public static bool IsEmulator()
    {
        if (!CudaLibraries.IsEmulator) return false;
        try { return mvqemu_is_emulator() != 0; }
        catch (EntryPointNotFoundException) { return false; }
    }

    /// <summary>The emulator's description of its last error (guard violation, bad launch), or null.</summary>
    public static string? LastError()
    {
        if (!CudaLibraries.IsEmulator) return null;
        try
        {
            var p = mvqemu_last_error();
            var s = p == null ? null : Marshal.PtrToStringUTF8((IntPtr)p);
            return string.IsNullOrEmpty(s) ? null : s;
        }
        catch (EntryPointNotFoundException) { return null; }
    }
}
