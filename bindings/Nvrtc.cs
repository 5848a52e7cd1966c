// LibraryImport declarations of NVRTC (nvrtc.h): the run-time CUDA C++ compiler.
using System.Runtime.InteropServices;

namespace MvqNative.Bindings;

/// <summary>nvrtcResult: status code of every NVRTC call (0 = success).</summary>
public enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
}

/// <summary>NVRTC (libnvrtc.so.13/.12/.11.2). Always the real library, also in emulator mode.</summary>
public static unsafe partial class Nvrtc
{
    static Nvrtc() => CudaLibraries.EnsureResolver();

    private const string L = CudaLibraries.Nvrtc;

    [LibraryImport(L)] public static partial NvrtcResult nvrtcVersion(out int major, out int minor);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetNumSupportedArchs(out int count);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetSupportedArchs(int* archs);

    /// <summary>Creates a program from <paramref name="src"/>; headers[i] is the text of the file named includeNames[i].</summary>
    [LibraryImport(L)]
    public static partial NvrtcResult nvrtcCreateProgram(out IntPtr prog, byte* src, byte* name, int numHeaders, byte** headers, byte** includeNames);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcDestroyProgram(ref IntPtr prog);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcCompileProgram(IntPtr prog, int numOptions, byte** options);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetProgramLogSize(IntPtr prog, out nuint size);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetProgramLog(IntPtr prog, byte* log);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetPTXSize(IntPtr prog, out nuint size);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetPTX(IntPtr prog, byte* ptx);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetCUBINSize(IntPtr prog, out nuint size);
    [LibraryImport(L)] public static partial NvrtcResult nvrtcGetCUBIN(IntPtr prog, byte* cubin);
    [LibraryImport(L)] public static partial byte* nvrtcGetErrorString(NvrtcResult result);

    /// <summary>Name of a status code ("NVRTC_ERROR_COMPILATION").</summary>
    public static string ErrorName(NvrtcResult r)
    {
        try { var p = nvrtcGetErrorString(r); return p == null ? $"nvrtcResult {(int)r}" : Marshal.PtrToStringUTF8((IntPtr)p)!; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return $"nvrtcResult {(int)r}"; }
    }
}
