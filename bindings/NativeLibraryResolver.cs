// One place that maps the logical library names of the bindings (cuda, nvrtc, cublas, nvtx)
// to files across CUDA 11.8..13, and switches cuda/cublas to the host emulator.
using System.Reflection;
using System.Runtime.InteropServices;

namespace MvqNative.Bindings;

/// <summary>
/// Logical library names used by the <c>LibraryImport</c> declarations, and the process-wide
/// choice between the real CUDA driver/cuBLAS and the host emulator (libmvq_emu.so).
/// The choice is made once per process: the runtime caches a library the first time one of
/// its functions is called, so a process binds either real CUDA or the emulator, never both.
/// NVRTC is always the real library.
/// </summary>
public static class CudaLibraries
{
    public const string Cuda = "mvq_cuda";
    public const string Nvrtc = "mvq_nvrtc";
    public const string Cublas = "mvq_cublas";
    public const string Nvtx = "mvq_nvtx";

    /// <summary>File name of the emulator library.</summary>
    public const string EmulatorFileName = "libmvq_emu.so";

    private static readonly object Gate = new();
    private static string? _emulatorPath;
    private static bool _cudaBound;

    static CudaLibraries() => NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);

    /// <summary>Makes sure the resolver is installed (touching the class runs its static constructor).</summary>
    internal static void EnsureResolver() { }

    /// <summary>Path of the emulator when <see cref="UseEmulator"/> was called, else null.</summary>
    public static string? EmulatorPath { get { lock (Gate) return _emulatorPath; } }

    /// <summary>True when cuda and cublas resolve to the host emulator.</summary>
    public static bool IsEmulator => EmulatorPath is not null;

    /// <summary>True once the driver library has been loaded (the mode can no longer change).</summary>
    public static bool IsCudaBound { get { lock (Gate) return _cudaBound; } }

    /// <summary>
    /// Routes libcuda and libcublas to the emulator at <paramref name="path"/>. Must be called
    /// before the first driver call of the process; calling it again with the same path is a no-op.
    /// </summary>
    /// <exception cref="InvalidOperationException">The real driver is already bound in this process.</exception>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    public static void UseEmulator(string path)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"emulator library not found at {path}", path);
        lock (Gate)
        {
            if (_emulatorPath == path) return;
            if (_cudaBound)
                throw new InvalidOperationException(_emulatorPath is null
                    ? "this process already uses the real CUDA driver; cuda and cuda-emu cannot be mixed in one process"
                    : $"this process already uses the emulator at {_emulatorPath}");
            _emulatorPath = path;
        }
        EnsureResolver();
    }

    /// <summary>
    /// Fails when the process already bound the emulator and the caller wants the real driver.
    /// </summary>
    public static void RequireRealDriver()
    {
        EnsureResolver();
        lock (Gate)
            if (_emulatorPath is not null)
                throw new InvalidOperationException($"this process already uses the CUDA emulator ({_emulatorPath}); cuda and cuda-emu cannot be mixed in one process");
    }

    /// <summary>
    /// Finds libmvq_emu.so: $MVQ_EMU_LIB, next to this assembly, then build/native/ in
    /// AppContext.BaseDirectory or any folder above it. Null when none exists.
    /// </summary>
    public static string? FindEmulator()
    {
        var env = Environment.GetEnvironmentVariable("MVQ_EMU_LIB");
        if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? Path.GetFullPath(env) : null;
        // The application folder is where the assembly sits (also for single-file and NativeAOT builds).
        var beside = Path.Combine(AppContext.BaseDirectory, EmulatorFileName);
        if (File.Exists(beside)) return beside;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "build", "native", EmulatorFileName);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Candidate file names per logical library, newest CUDA first.</summary>
    public static IReadOnlyList<string> Candidates(string logical) => logical switch
    {
        Cuda => ["libcuda.so.1", "libcuda.so"],
        Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
        Nvtx => ["libnvToolsExt.so.1", "libnvToolsExt.so"],
        _ => [],
    };

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        string? emu;
        lock (Gate)
        {
            emu = _emulatorPath;
            if (name == Cuda) _cudaBound = true;
        }
        if (emu is not null && (name == Cuda || name == Cublas))
            return NativeLibrary.Load(emu);
        foreach (var file in Candidates(name))
            if (NativeLibrary.TryLoad(file, assembly, searchPath, out var h)) return h;
        return IntPtr.Zero; // the runtime then throws DllNotFoundException naming the logical library
    }

    /// <summary>Whether one of the candidate files of a logical library loads here (no binding is made).</summary>
    public static string? Probe(string logical)
    {
        foreach (var file in Candidates(logical))
            if (NativeLibrary.TryLoad(file, out var h)) { NativeLibrary.Free(h); return file; }
        return null;
    }
}
